#include "vmm/bench/kvm_baseline.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "vmm/bench/stats.h"
#include "vmm/clock.h"
#include "vmm/kvm/unique_fd.h"

namespace vmfork::bench {

Result<uint64_t> kvm_create_vm_ns_median(int repeat) {
  kvm::UniqueFd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm.valid()) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("the KVM baseline: /dev/kvm: {}", std::strerror(errno)));
  }
  std::vector<uint64_t> samples;
  for (int i = 0; i < repeat; ++i) {
    const uint64_t start = now_ns();
    kvm::UniqueFd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
    if (!vm.valid()) {
      return make_error(ErrorCode::kSystem,
                        fmt::format("the KVM baseline: KVM_CREATE_VM: {}", std::strerror(errno)));
    }
    kvm::UniqueFd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
    const uint64_t stop = now_ns();
    if (!vcpu.valid()) {
      return make_error(ErrorCode::kSystem,
                        fmt::format("the KVM baseline: KVM_CREATE_VCPU: {}", std::strerror(errno)));
    }
    samples.push_back(stop - start);
  }
  return median(std::move(samples));
}

}  // namespace vmfork::bench
