#include "vmm/boot/guest_layout.h"

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
  return GuestLayout(ram_bytes, vcpu_count);
}

}  // namespace vmfork
