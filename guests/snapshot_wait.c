/* snapshot_wait: busy until it is snapshotted from outside (vmfork run
 * --snapshot DIR --snapshot-after DURATION) and restored.
 *
 * Every vCPU counts (runtime/counting.h). vCPU 0 stops the VM when boot-info
 * clone_id becomes non-zero (the monitor writes it in a clone restored from
 * the snapshot) or after about 2^32 TSC ticks (the original, a second or
 * two).
 * Output: the original prints "snapshot_wait original: done", clone k
 * "snapshot_wait clone <k>: resumed, counters ok". Exit status 0; a failed
 * check (the total differs from the sum of the counters, or a ring page
 * lost its writes) prints "snapshot_wait ...: ..." and exits 1. */
#include "counting.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu >= COUNTING_MAX_VCPUS) return 0;
  if (vcpu != 0) {
    counting_until_stopped(bi, vcpu, 0);
    return 0;
  }
  const uint64_t start = rdtsc();
  uint64_t clone_id = 0;
  while ((clone_id = boot_clone_id(bi)) == 0 && rdtsc() - start < (uint64_t)1 << 32)
    counting_step(bi, 0);
  const char* failed = counting_stop_and_check(bi);
  console_puts("snapshot_wait ");
  if (clone_id == 0) {
    console_puts("original");
  } else {
    console_puts("clone ");
    console_put_u64(clone_id);
  }
  if (failed) {
    console_puts(": ");
    console_puts(failed);
    console_puts("\n");
    vm_exit(1);
  }
  console_puts(clone_id == 0 ? ": done\n" : ": resumed, counters ok\n");
  vm_exit(0);
}
