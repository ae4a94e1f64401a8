#include "guestmm/frame_table.h"

namespace vmfork {

Result<FrameTable> FrameTable::create(uint64_t frames) {
  Result<HostMapping> words = HostMapping::anonymous(frames * sizeof(uint64_t));
  if (!words) return words.error();
  return FrameTable(std::move(*words), frames);
}

}  // namespace vmfork
