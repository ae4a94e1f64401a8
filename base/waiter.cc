#include "base/waiter.h"

#include <sched.h>

namespace vmfork {

void HostWaiter::on_wait() {
  // Spin briefly, then yield: the holder may be descheduled on a 2-core host.
  if (++spins_ % 64 == 0) {
    sched_yield();
  } else {
    cpu_relax();
  }
}

HostWaiter& HostWaiter::instance() {
  thread_local HostWaiter waiter;
  return waiter;
}

}  // namespace vmfork
