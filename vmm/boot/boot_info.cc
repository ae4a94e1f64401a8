#include "vmm/boot/boot_info.h"

#include <string>

#include "vmm/boot/monitor_area.h"

namespace vmfork {
namespace {

// Explicit byte order, so the ABI does not depend on the host's.
template <class T>
void put_le(std::span<std::byte, kBootInfoBytes> out, size_t offset, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[offset + i] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
  }
}

template <class T>
T get_le(std::span<const std::byte, kBootInfoBytes> in, size_t offset) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value = static_cast<T>(value | (static_cast<T>(in[offset + i]) << (8 * i)));
  }
  return value;
}

}  // namespace

std::array<std::byte, kBootInfoBytes> BootInfo::encode() const {
  namespace off = boot_info_offset;
  std::array<std::byte, kBootInfoBytes> out{};
  put_le<uint32_t>(out, off::kMagic, kBootInfoMagic);
  put_le<uint32_t>(out, off::kVersion, kBootInfoVersion);
  put_le<uint32_t>(out, off::kVcpuCount, vcpu_count);
  put_le<uint32_t>(out, off::kReserved, 0);
  put_le<uint64_t>(out, off::kRamBytes, ram_bytes);
  put_le<uint64_t>(out, off::kCloneId, clone_id);
  put_le<uint64_t>(out, off::kFreeBase, free_base.value());
  put_le<uint64_t>(out, off::kFreeEnd, free_end.value());
  return out;
}

Result<BootInfo> BootInfo::decode(std::span<const std::byte, kBootInfoBytes> bytes) {
  namespace off = boot_info_offset;
  if (const auto magic = get_le<uint32_t>(bytes, off::kMagic); magic != kBootInfoMagic) {
    return make_error(ErrorCode::kInvalidArgument,
                      "boot info magic is " + std::to_string(magic) + ", not 0x6B464D56");
  }
  if (const auto version = get_le<uint32_t>(bytes, off::kVersion); version != kBootInfoVersion) {
    return make_error(ErrorCode::kInvalidArgument,
                      "boot info version is " + std::to_string(version) + ", not 1");
  }
  if (get_le<uint32_t>(bytes, off::kReserved) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "boot info reserved field is not 0");
  }
  return BootInfo{
      .vcpu_count = get_le<uint32_t>(bytes, off::kVcpuCount),
      .ram_bytes = get_le<uint64_t>(bytes, off::kRamBytes),
      .clone_id = get_le<uint64_t>(bytes, off::kCloneId),
      .free_base = Gpa(get_le<uint64_t>(bytes, off::kFreeBase)),
      .free_end = Gpa(get_le<uint64_t>(bytes, off::kFreeEnd)),
  };
}

Result<void> write_boot_info(AddressSpace& space, const BootInfo& info) {
  const std::array<std::byte, kBootInfoBytes> bytes = info.encode();
  return space.write(kBootInfoGpa, bytes);
}

Result<BootInfo> read_boot_info(const AddressSpace& space) {
  std::array<std::byte, kBootInfoBytes> bytes{};
  if (Result<void> read = space.read(kBootInfoGpa, bytes); !read) return read.error();
  return BootInfo::decode(bytes);
}

Result<void> write_clone_id(AddressSpace& space, uint64_t clone_id) {
  // Refuse a space that was never booted rather than scribble on its RAM.
  if (Result<BootInfo> info = read_boot_info(space); !info) {
    return make_error(info.error().code,
                      "cannot set clone_id in " + space.name() + ": " + info.error().message);
  }
  // Only the 8 bytes of clone_id: the rest of the block stays the snapshot's.
  std::array<std::byte, sizeof(uint64_t)> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::byte>((clone_id >> (8 * i)) & 0xff);
  }
  return space.write(kBootInfoGpa + boot_info_offset::kCloneId, bytes);
}

}  // namespace vmfork
