#include "vmm/boot/generation_page.h"

#include <array>
#include <cstddef>
#include <cstring>

namespace vmfork {

namespace {

struct PageHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t generation;
  uint64_t clone_id;
};
static_assert(sizeof(PageHeader) == 24, "the page's layout is fixed");

}  // namespace

Result<void> write_generation_page(AddressSpace& space, const Generation& generation) {
  const PageHeader header{kGenerationMagic, kGenerationVersion, generation.generation,
                          generation.clone_id};
  std::array<std::byte, sizeof(PageHeader)> bytes{};
  std::memcpy(bytes.data(), &header, sizeof(header));
  return space.write(kGenerationPageGpa, bytes);
}

Result<Generation> read_generation_page(const AddressSpace& space) {
  std::array<std::byte, sizeof(PageHeader)> bytes{};
  if (Result<void> read = space.read(kGenerationPageGpa, bytes); !read) return read.error();
  PageHeader header{};
  std::memcpy(&header, bytes.data(), sizeof(header));
  if (header.magic != kGenerationMagic || header.version != kGenerationVersion) {
    return make_error(ErrorCode::kInvalidArgument,
                      space.name() + " has no generation page (not booted as a PC)");
  }
  return Generation{header.generation, header.clone_id};
}

Result<void> advance_generation(AddressSpace& space, uint64_t clone_id) {
  Result<Generation> original = read_generation_page(space);
  if (!original) return original.error();
  return write_generation_page(space, {original->generation + 1, clone_id});
}

}  // namespace vmfork
