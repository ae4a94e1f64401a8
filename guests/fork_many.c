/* fork_many: forks MANY (64) clones at once, then 2. Under a host limit on
 * threads (ulimit -u: tests/run/thread_limit.sh) the fork of 64 cannot get
 * its vCPU threads and must be refused (-1), never kill the monitor; the
 * fork of 2 must then work.
 *
 * Only vCPU 0 forks (the others halt). Output: the original prints
 * "fork_many: fork of 64 refused\n" or "fork_many: forked 64 clones\n" (those
 * clones exit 0 silently), then clones 1 and 2 of the second fork print
 * "fork_many clone <k> ok\n" and the original "fork_many: forked 2
 * clones\n". Every VM exits 0; a refused fork of 2 makes the original exit 1. */
#include "runtime.h"

#define MANY 64u

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) return 0;
  int result = vm_fork(MANY);
  if (result > 0) return 0;
  console_puts(result < 0 ? "fork_many: fork of 64 refused\n" : "fork_many: forked 64 clones\n");

  result = vm_fork(2);
  if (result < 0) {
    console_puts("fork_many: fork of 2 refused\n");
    return 1;
  }
  if (result > 0) {
    console_puts("fork_many clone ");
    console_put_u64(boot_clone_id(bi));
    console_puts(" ok\n");
    return 0;
  }
  console_puts("fork_many: forked 2 clones\n");
  return 0;
}
