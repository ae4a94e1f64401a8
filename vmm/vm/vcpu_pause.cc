#include "vmm/vm/vcpu_pause.h"

#include <algorithm>

namespace vmfork {

void VcpuPause::add_running() {
  std::lock_guard lock(mutex_);
  ++running_;
}

uint32_t VcpuPause::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

uint32_t VcpuPause::stopped() {
  std::lock_guard lock(mutex_);
  --running_;
  changed_.notify_all();
  return running_;
}

void VcpuPause::end() {
  std::lock_guard lock(mutex_);
  ending_.store(true, std::memory_order_release);
  changed_.notify_all();
}

bool VcpuPause::try_take(PauseMember& pauser) {
  std::lock_guard lock(mutex_);
  const PauseMember* holder = holder_.load(std::memory_order_relaxed);
  if (holder == &pauser) return true;  // handed over
  if (holder != nullptr) {
    if (std::find(waiting_.begin(), waiting_.end(), &pauser) == waiting_.end()) {
      waiting_.push_back(&pauser);
    }
    return false;
  }
  holder_.store(&pauser, std::memory_order_release);
  ++serial_;
  parked_ = 0;
  return true;
}

void VcpuPause::wait_until_others_parked(PauseMember& pauser) {
  // Parked while it waits: a member on its way to a boundary may be in a COW
  // fault whose shootdown must not wait for the pauser, which is not
  // servicing its own.
  pauser.parking();
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return parked_ + 1 == running_ || ending(); });
}

void VcpuPause::resume_others() {
  std::lock_guard lock(mutex_);
  PauseMember* next = nullptr;
  if (!waiting_.empty()) {
    next = waiting_.front();
    waiting_.pop_front();
  }
  holder_.store(next, std::memory_order_release);
  // Whoever parked for the old holder wakes; under a new one they park again
  // (after a basic block of their own), and only then count for it.
  ++serial_;
  parked_ = 0;
  changed_.notify_all();
}

bool VcpuPause::park_until_resumed(PauseMember& member) {
  member.parking();
  std::unique_lock lock(mutex_);
  const PauseMember* holder = holder_.load(std::memory_order_relaxed);
  if (holder != nullptr && holder != &member && !ending()) {
    const uint64_t serial = serial_;
    ++parked_;
    changed_.notify_all();
    changed_.wait(lock, [this, serial] { return serial_ != serial || ending(); });
  }
  if (ending()) return false;
  lock.unlock();
  member.resuming();  // flushes what was requested while parked
  return true;
}

}  // namespace vmfork
