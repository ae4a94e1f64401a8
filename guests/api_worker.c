/* api_worker: runs until it is stopped (DELETE /vms/{id}), for the control
 * API's tests and quick start; its clones, forked from outside or restored
 * from a snapshot, check their memory and exit.
 *
 * Every vCPU counts (runtime/counting.h: COW writes in every clone). vCPU 0
 * prints "api_worker: running" once, then watches boot-info clone_id: the
 * monitor writes k there in clone k. A clone stops its vCPUs, checks the
 * counters, prints "api_worker clone <k>: counters ok" and exits 0 (1 on a
 * failed check, naming it). The original never ends by itself. */
#include "counting.h"

/* Pauses between counts: the tests run many of these on few host cores. */
#define RELAX 64

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu >= COUNTING_MAX_VCPUS) return 0;
  if (vcpu != 0) {
    counting_until_stopped(bi, vcpu, RELAX);
    return 0;
  }
  if (boot_clone_id(bi) == 0) console_puts("api_worker: running\n");
  uint64_t clone_id = 0;
  while ((clone_id = boot_clone_id(bi)) == 0) {
    counting_step(bi, 0);
    for (int i = 0; i < RELAX; ++i)
      cpu_relax();
  }
  const char* failed = counting_stop_and_check(bi);
  console_puts("api_worker clone ");
  console_put_u64(clone_id);
  console_puts(failed ? ": " : ": counters ok\n");
  if (failed) {
    console_puts(failed);
    console_puts("\n");
    vm_exit(1);
  }
  vm_exit(0);
}
