/* fork_bomb: every VM forks one clone, LEVELS times in a row, and each
 * clone carries on from where its parent was: 2^LEVELS (2048) VMs if no
 * fork is refused, more than the monitor's 1024 vCPUs if enough of them run
 * at once. A VM stops forking at its first refusal (-1). The monitor must
 * neither hang nor die, and must give back each VM's resources as it ends.
 *
 * Only vCPU 0 forks (the others halt). Output: the original prints
 * "fork_bomb: done\n" once its own forks are over; clones print nothing.
 * Every VM exits 0. */
#include "runtime.h"

#define LEVELS 11u

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  int original = 1;
  for (uint32_t level = 0; level < LEVELS; level++) {
    const int result = vm_fork(1);
    if (result < 0) break;
    if (result > 0) original = 0;
  }
  if (original) console_puts("fork_bomb: done\n");
  return 0;
}
