// What a thread does while it spins on something another thread holds.
// A vCPU must keep servicing shootdowns addressed to it while it waits
// (DESIGN section 6, "no deadlock by waiting"); a host thread just pauses.
#pragma once

#include <cstdint>

namespace vmfork {

class ShootdownTarget;

inline void cpu_relax() {
  __builtin_ia32_pause();
}

class Waiter {
 public:
  virtual ~Waiter() = default;
  // Called on every spin of a wait loop.
  virtual void on_wait() = 0;
  // Called at points of a long path (a COW fault) where the thread may
  // service what is addressed to it without waiting: the sooner a vCPU
  // acknowledges, the sooner another vCPU's fault completes.
  virtual void poll() {}
  // The waiting thread's own shootdown target, if it is a vCPU: a shootdown
  // it initiates flushes its own translations directly instead of posting
  // to itself (which would move its request line between cores).
  virtual ShootdownTarget* own_shootdown_target() { return nullptr; }
};

// The waiter of a thread that is not a vCPU: it caches no translation, so
// it has nothing to service.
class HostWaiter final : public Waiter {
 public:
  void on_wait() override;
  static HostWaiter& instance();

 private:
  uint32_t spins_ = 0;
};

}  // namespace vmfork
