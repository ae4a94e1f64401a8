#include "vmm/vm/vcpu_pause.h"

#include <algorithm>

#include "base/waiter.h"

namespace vmfork {

template <class Done>
void VcpuPause::wait_for(Done done) {
  // A few microseconds of spinning: long enough for a section or for a
  // running vCPU to reach its boundary, short enough not to keep a thread we
  // wait for off a core when vCPU threads outnumber the host's cores.
  constexpr uint32_t kSpins = 512;
  for (uint32_t spin = 0; spin < kSpins; ++spin) {
    if (done()) return;
    cpu_relax();
  }
  std::unique_lock lock(mutex_);
  changed_.wait(lock, done);
}

void VcpuPause::add_running() {
  std::lock_guard lock(mutex_);
  running_.fetch_add(1, std::memory_order_relaxed);
}

uint32_t VcpuPause::running() const {
  return running_.load(std::memory_order_acquire);
}

uint32_t VcpuPause::stopped() {
  std::lock_guard lock(mutex_);
  const uint32_t running = running_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  changed_.notify_all();
  return running;
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
  serial_.fetch_add(1, std::memory_order_release);
  parked_.store(0, std::memory_order_release);
  return true;
}

void VcpuPause::wait_until_others_parked(PauseMember& pauser) {
  // Parked while it waits: a member on its way to a boundary may be in a COW
  // fault whose shootdown must not wait for the pauser, which is not
  // servicing its own.
  pauser.parking();
  wait_for([this] {
    return parked_.load(std::memory_order_acquire) + 1 ==
               running_.load(std::memory_order_acquire) ||
           ending();
  });
}

bool VcpuPause::take_from_outside(PauseMember& host) {
  std::unique_lock lock(mutex_);
  if (holder_.load(std::memory_order_relaxed) == nullptr) {
    holder_.store(&host, std::memory_order_release);
    serial_.fetch_add(1, std::memory_order_release);
    parked_.store(0, std::memory_order_release);
  } else {
    // resume_others() hands it over in order, as to a queued vCPU.
    waiting_.push_back(&host);
    changed_.wait(lock, [this, &host] {
      return holder_.load(std::memory_order_relaxed) == &host || ending();
    });
  }
  if (holder_.load(std::memory_order_relaxed) == &host) return true;
  waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &host));
  return false;
}

bool VcpuPause::wait_until_all_parked() {
  // The holder is no member that runs: every running one parks.
  wait_for([this] {
    return parked_.load(std::memory_order_acquire) == running_.load(std::memory_order_acquire) ||
           ending();
  });
  return !ending();
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
  serial_.fetch_add(1, std::memory_order_release);
  parked_.store(0, std::memory_order_release);
  changed_.notify_all();
}

bool VcpuPause::park_until_resumed(PauseMember& member) {
  member.parking();
  {
    std::unique_lock lock(mutex_);
    const PauseMember* holder = holder_.load(std::memory_order_relaxed);
    if (holder != nullptr && holder != &member && !ending()) {
      const uint64_t serial = serial_.load(std::memory_order_relaxed);
      parked_.fetch_add(1, std::memory_order_release);
      changed_.notify_all();
      lock.unlock();
      wait_for(
          [this, serial] { return serial_.load(std::memory_order_acquire) != serial || ending(); });
    }
  }
  if (ending()) return false;
  member.resuming();  // flushes what was requested while parked
  return true;
}

}  // namespace vmfork
