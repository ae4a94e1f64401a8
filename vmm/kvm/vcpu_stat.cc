#include "vmm/kvm/vcpu_stat.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace vmfork::kvm {

namespace {

// struct kvm_stats_desc without its name: <linux/kvm.h> declares the name
// with __DECLARE_FLEX_ARRAY, whose size C++ gets wrong (kvm_abi.h).
struct StatDescriptor {
  uint32_t flags;
  int16_t exponent;
  uint16_t size;
  uint32_t offset;
  uint32_t bucket_size;
};
static_assert(sizeof(StatDescriptor) == 16, "kvm_stats_desc's fixed part is 16 bytes");

bool read_exactly(int fd, void* into, size_t bytes, uint64_t offset) {
  return pread(fd, into, bytes, static_cast<off_t>(offset)) == static_cast<ssize_t>(bytes);
}

}  // namespace

Result<VcpuStat> VcpuStat::open(int vcpu_fd, std::string_view name) {
  UniqueFd fd(ioctl(vcpu_fd, KVM_GET_STATS_FD, 0));
  if (!fd.valid()) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("KVM_GET_STATS_FD: {}", std::strerror(errno)));
  }
  kvm_stats_header header{};
  if (!read_exactly(fd.get(), &header, sizeof(header), 0)) {
    return make_error(ErrorCode::kSystem, "reading a vCPU's stats header");
  }
  const size_t entry = sizeof(StatDescriptor) + header.name_size;
  std::vector<char> descriptors(entry * header.num_desc);
  if (!read_exactly(fd.get(), descriptors.data(), descriptors.size(), header.desc_offset)) {
    return make_error(ErrorCode::kSystem, "reading a vCPU's stats descriptors");
  }
  for (uint32_t i = 0; i < header.num_desc; ++i) {
    const char* at = descriptors.data() + i * entry;
    StatDescriptor descriptor{};
    std::memcpy(&descriptor, at, sizeof(descriptor));
    const std::string_view stat_name(at + sizeof(descriptor),
                                     strnlen(at + sizeof(descriptor), header.name_size));
    if (stat_name == name && descriptor.size >= 1) {
      return VcpuStat(std::move(fd), uint64_t{header.data_offset} + descriptor.offset);
    }
  }
  return make_error(ErrorCode::kSystem, fmt::format("the vCPU has no statistic {}", name));
}

uint64_t VcpuStat::read() const {
  uint64_t value = 0;
  if (!read_exactly(fd_.get(), &value, sizeof(value), offset_)) return 0;
  return value;
}

}  // namespace vmfork::kvm
