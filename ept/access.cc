#include "ept/access.h"

namespace vmfork {

const char* to_string(Access access) {
  static constexpr const char* kNames[] = {"---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx"};
  return kNames[static_cast<uint8_t>(access) & 7];
}

}  // namespace vmfork
