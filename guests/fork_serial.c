/* fork_serial: forks one short-lived clone at a time, FORKS (1100) times:
 * more VMs than the monitor's 1024 vCPUs in all, though only a few at once,
 * since each clone exits as soon as it runs. The monitor must give each
 * clone's threads, reclamation slot, memory and (kvm) descriptors back as
 * it ends, not when the original does. A fork refused because the clones
 * before it have not ended yet is asked again, up to RETRIES times in a row.
 *
 * Only vCPU 0 forks (the others halt). Output: the original prints
 * "fork_serial: 1100 clones forked\n"; clones print nothing. Every VM exits
 * 0; if the retries run out, the original prints "fork_serial: fork <i>
 * refused <RETRIES> times\n" and exits 1. */
#include "runtime.h"

#define FORKS 1100u
#define RETRIES 100000u
#define BACKOFF 1000u /* spins between two tries */

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  for (uint32_t i = 0; i < FORKS; i++) {
    uint32_t refused = 0;
    int result;
    while ((result = vm_fork(1)) < 0) {
      if (++refused == RETRIES) {
        console_puts("fork_serial: fork ");
        console_put_u64(i);
        console_puts(" refused ");
        console_put_u64(RETRIES);
        console_puts(" times\n");
        return 1;
      }
      for (uint32_t spin = 0; spin < BACKOFF; spin++)
        cpu_relax();
    }
    if (result > 0) return 0; /* the clone: done at once */
  }
  console_puts("fork_serial: ");
  console_put_u64(FORKS);
  console_puts(" clones forked\n");
  return 0;
}
