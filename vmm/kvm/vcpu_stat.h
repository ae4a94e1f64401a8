// One counter of a vCPU's binary statistics (KVM_GET_STATS_FD), read with
// one pread and without stopping the vCPU.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "vmm/kvm/unique_fd.h"

namespace vmfork::kvm {

class VcpuStat {
 public:
  // The counter `name` of the vCPU `vcpu_fd` (e.g. "halt_exits"); fails
  // when the kernel has no stats fd or no such counter.
  static Result<VcpuStat> open(int vcpu_fd, std::string_view name);

  // The counter's value now; 0 when the read fails.
  uint64_t read() const;

 private:
  VcpuStat(UniqueFd fd, uint64_t offset) : fd_(std::move(fd)), offset_(offset) {}

  UniqueFd fd_;
  uint64_t offset_;  // of the value in the stats file
};

}  // namespace vmfork::kvm
