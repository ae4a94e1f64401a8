#include "vmm/loader/elf_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>

namespace vmfork {
namespace {

// Makes [start, start + bytes) read as zero. A page that already reads as
// zero is left alone: in a fresh space that is every page never touched, so a
// large .bss costs no frames until the guest writes it (the space gives
// untouched pages zeroed frames on demand). Pages holding anything else (a
// space that was used, or the file bytes' last page) are overwritten.
Result<void> zero_fill(AddressSpace& space, Gpa start, uint64_t bytes) {
  static constexpr std::array<std::byte, kPageSize> kZeros{};
  std::array<std::byte, kPageSize> page{};
  uint64_t done = 0;
  while (done < bytes) {
    const Gpa at = start + done;
    const uint64_t chunk = std::min<uint64_t>(bytes - done, kPageSize - at.page_offset());
    const std::span<std::byte> seen(page.data(), chunk);
    if (Result<void> read = space.read(at, seen); !read) return read;
    if (std::memcmp(seen.data(), kZeros.data(), chunk) != 0) {
      if (Result<void> written = space.write(at, std::span(kZeros.data(), chunk)); !written) {
        return written;
      }
    }
    done += chunk;
  }
  return Ok{};
}

Error in_segment(const ElfSegment& segment, const Error& error) {
  return make_error(error.code, "loading the segment at guest-physical " +
                                    fmt::format("{:#x}", segment.start.value()) + ": " +
                                    error.message);
}

}  // namespace

Result<LoadedElf> load_elf(std::span<const std::byte> file, AddressSpace& space,
                           const GuestLayout& layout) {
  if (space.ram_bytes() != layout.ram_bytes()) {
    return make_error(ErrorCode::kInvalidArgument, "address space " + space.name() + " has " +
                                                       std::to_string(space.ram_bytes()) +
                                                       " bytes of RAM, the layout " +
                                                       std::to_string(layout.ram_bytes()));
  }
  Result<ElfImage> image = parse_elf(file, layout);
  if (!image) return image.error();

  for (const ElfSegment& segment : image->segments) {
    const std::span<const std::byte> bytes = file.subspan(segment.file_offset, segment.file_bytes);
    if (Result<void> written = space.write(segment.start, bytes); !written) {
      return in_segment(segment, written.error());
    }
    if (Result<void> zeroed = zero_fill(space, segment.start + segment.file_bytes,
                                        segment.memory_bytes - segment.file_bytes);
        !zeroed) {
      return in_segment(segment, zeroed.error());
    }
  }

  // Segments are sorted and disjoint, so the last one ends highest. Its end is
  // at most the stacks' bottom, a multiple of 64 KiB, so rounding up to 4 KiB
  // stays at or below it.
  const uint64_t highest_end = image->segments.back().end().value();
  const Gpa free_base((highest_end + kPageOffsetMask) & ~kPageOffsetMask);
  return LoadedElf{.entry = image->entry,
                   .segments = std::move(image->segments),
                   .free_base = free_base,
                   .free_end = layout.stacks_bottom()};
}

}  // namespace vmfork
