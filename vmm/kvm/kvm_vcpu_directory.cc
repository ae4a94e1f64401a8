#include "vmm/kvm/kvm_vcpu_directory.h"

#include <algorithm>

#include "vmm/kvm/kvm_vcpu.h"

namespace vmfork {

void KvmVcpuDirectory::remove(KvmVcpu* vcpu) {
  std::lock_guard lock(mutex_);
  vcpus_.erase(std::remove(vcpus_.begin(), vcpus_.end(), vcpu), vcpus_.end());
}

bool KvmVcpuDirectory::fail_memory(pid_t thread_id, const std::string& cause) {
  std::lock_guard lock(mutex_);
  for (KvmVcpu* vcpu : vcpus_) {
    if (vcpu->thread_id() == thread_id) {
      vcpu->fail_memory(cause);  // it reports with its RIP
      return true;
    }
  }
  return false;
}

}  // namespace vmfork
