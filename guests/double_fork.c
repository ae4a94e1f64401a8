/* double_fork: vCPUs 0 and 1 ask for one clone each at the same moment.
 * Both forks happen, one after the other. A VM made by one fork holds the
 * other vCPU's request unserved (or not yet made), so that vCPU forks again
 * there: whichever vCPU wins, the VMs are vm0, vm0.1, vm0.1.1 and vm0.2.
 * vCPU 0 of each prints its clone_id once both vCPUs are past their fork.
 * Needs 2 vCPUs or more (the others halt). Exit status: 0 in every VM. */
#include "runtime.h"

static struct barrier start;
static volatile uint32_t past_fork;

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu > 1) return 0;
  barrier_wait(&start, 2);
  if (vm_fork(1) < 0) {
    console_puts("fork failed\n");
    vm_exit(2);
  }
  atomic_inc32(&past_fork);
  if (vcpu != 0) return 0;
  while (atomic_load32(&past_fork) < 2)
    cpu_relax();
  console_puts("done, clone_id ");
  console_put_u64(boot_clone_id(bi));
  console_putc('\n');
  return 0;
}
