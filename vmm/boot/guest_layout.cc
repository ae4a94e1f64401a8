#include "vmm/boot/guest_layout.h"

#include <fmt/format.h>

#include <string>

namespace vmfork {

Result<GuestLayout> GuestLayout::create(uint64_t ram_bytes, uint32_t vcpu_count) {
  if (vcpu_count == 0) {
    return make_error(ErrorCode::kInvalidArgument, "a VM needs at least one vCPU");
  }
  if (ram_bytes == 0 || ram_bytes % kRamGranule != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "guest RAM of " + std::to_string(ram_bytes) +
                          " bytes is not a positive multiple of 2 MiB (the identity map "
                          "uses 2 MiB pages)");
  }
  if (ram_bytes > kMaxRamBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "guest RAM of " + std::to_string(ram_bytes) +
                          " bytes is above the 64 GiB whose page tables fit below 1 MiB");
  }
  // vcpu_count * 64 KiB cannot overflow: a u32 times 2^16 fits in 48 bits.
  const uint64_t stacks = uint64_t{vcpu_count} * kVcpuStackBytes;
  if (ram_bytes < kMonitorAreaEnd || ram_bytes - kMonitorAreaEnd < stacks) {
    return make_error(ErrorCode::kInvalidArgument,
                      "guest RAM of " + std::to_string(ram_bytes) +
                          " bytes cannot hold the monitor's 1 MiB and " +
                          std::to_string(vcpu_count) + " vCPU stacks of 64 KiB");
  }
  return GuestLayout(ram_bytes, vcpu_count, Platform::kFreestanding);
}

Result<GuestLayout> GuestLayout::create_pc(uint64_t ram_bytes, uint32_t vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > kMaxPcVcpus) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("a Linux VM has 1 to {} vCPUs, not {}", kMaxPcVcpus, vcpu_count));
  }
  if (ram_bytes == 0 || ram_bytes % kRamGranule != 0 || ram_bytes > kMaxPcRamBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("guest RAM of {} bytes: a Linux VM's RAM is a positive multiple "
                                  "of 2 MiB up to {} GiB (below the 32-bit hole of the APICs)",
                                  ram_bytes, kMaxPcRamBytes >> 30));
  }
  return GuestLayout(ram_bytes, vcpu_count, Platform::kPc);
}

}  // namespace vmfork
