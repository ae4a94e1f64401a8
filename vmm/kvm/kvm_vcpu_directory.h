// The kvm vCPUs of one VM by host thread id: a fault the fault service could
// not serve names the thread it blocked, and its vCPU reports it with its
// RIP. vCPUs join when made and leave when destroyed; the fault service may
// look them up at any time meanwhile.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

namespace vmfork {

class KvmVcpu;

class KvmVcpuDirectory {
 public:
  void add(KvmVcpu* vcpu) {
    std::lock_guard lock(mutex_);
    vcpus_.push_back(vcpu);
  }
  void remove(KvmVcpu* vcpu);
  // The vCPU whose thread is `thread_id` fails with `cause` (KvmVcpu::
  // fail_memory), under the directory's lock, so that it is not destroyed
  // meanwhile. False: no vCPU runs on that thread.
  bool fail_memory(pid_t thread_id, const std::string& cause);

 private:
  std::mutex mutex_;
  std::vector<KvmVcpu*> vcpus_;  // guarded by mutex_
};

}  // namespace vmfork
