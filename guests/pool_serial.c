/* pool_serial: forks CLONES (6) clones one after another; each writes
 * CLONE_BYTES (30 MiB) of memory no VM had touched, then exits, while the
 * original does WAIT_ROUNDS of busy work between two forks, far more than
 * a clone's writes take. Run with --pool 100M: the frame pool holds three
 * clones' memory at once but not four, so the run works only if each
 * clone's frames go back to the pool when it ends (not when the original
 * does).
 *
 * Needs --mem 64M or more. Only vCPU 0 runs (the others halt). Output: each
 * clone prints "pool_serial: clone wrote 30 MiB\n" and the original
 * "pool_serial: 6 clones forked\n"; every VM exits 0. A refused fork prints
 * "pool_serial: fork refused\n" and exits 1. */
#include "runtime.h"

#define CLONES 6u
#define CLONE_BYTES (30ull << 20)
#define WAIT_ROUNDS 3000000u

static volatile uint64_t sink;

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) return 0;
  if (bi->free_end - bi->free_base < CLONE_BYTES) {
    console_puts("pool_serial: needs more RAM\n");
    return 1;
  }
  for (uint32_t i = 0; i < CLONES; i++) {
    const int result = vm_fork(1);
    if (result < 0) {
      console_puts("pool_serial: fork refused\n");
      return 1;
    }
    if (result > 0) {
      /* One word per page: every page becomes a frame of this clone's. */
      for (uint64_t at = bi->free_base; at < bi->free_base + CLONE_BYTES; at += PAGE_SIZE)
        *(volatile uint64_t*)at = at;
      console_puts("pool_serial: clone wrote 30 MiB\n");
      return 0;
    }
    for (uint32_t round = 0; round < WAIT_ROUNDS; round++)
      sink = sink + round;
  }
  console_puts("pool_serial: ");
  console_put_u64(CLONES);
  console_puts(" clones forked\n");
  return 0;
}
