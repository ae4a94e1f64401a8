/* fork_flood: asks for more clones than the monitor runs at once, and must
 * be refused (-1) at once each time, never hang: 4294967295 clones, 1024
 * clones, and 1024 / vcpu_count clones (with the original's own vCPUs, more
 * than the monitor's 1024 vCPUs in all: 64 clones of 16 vCPUs, say). A
 * fork of 2 clones must still work afterwards.
 *
 * vCPU 0 forks; the other vCPUs spin until it is done, so that every fork
 * pauses running vCPUs (in the clones too, until their vCPU 0 is done).
 *
 * Output: "fork_flood: <n> clones refused\n" for each flood, then
 * "fork_flood clone <k> ok\n" from clones 1 and 2 and "fork_flood: 2 clones
 * forked\n" from the original; every VM exits 0. A flood that is not
 * refused prints "fork_flood: <n> clones forked\n" and the original exits 1
 * (the flood's clones exit 0 silently). */
#include "runtime.h"

static volatile uint32_t done;

/* 1: refused, as it must be; 0: forked, and this is the original; a clone
 * of a flood that was served ends its VM quietly. */
static int flood(uint32_t clones) {
  const int result = vm_fork(clones);
  if (result > 0) vm_exit(0);
  console_puts("fork_flood: ");
  console_put_u64(clones);
  console_puts(result < 0 ? " clones refused\n" : " clones forked\n");
  return result < 0;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) {
    while (atomic_load32(&done) == 0)
      cpu_relax();
    return 0;
  }
  int refused = flood(0xFFFFFFFFu);
  refused &= flood(1024);
  refused &= flood(1024 / bi->vcpu_count);

  const int result = vm_fork(2);
  atomic_store32(&done, 1);
  if (result < 0) {
    console_puts("fork_flood: fork of 2 clones refused\n");
    return 1;
  }
  if (result > 0) {
    console_puts("fork_flood clone ");
    console_put_u64(boot_clone_id(bi));
    console_puts(" ok\n");
    return 0;
  }
  console_puts("fork_flood: 2 clones forked\n");
  return refused ? 0 : 1;
}
