/* fault_unsupported: vCPU 0 executes ud2, an instruction no engine runs for
 * a guest. The VM must end alone with an error naming the vCPU, the RIP and
 * the instruction; the other vCPUs spin until it does.
 * Output: "before ud2\n". Exit status: the monitor's error status (1). */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) {
    for (;;)
      cpu_relax();
  }
  console_puts("before ud2\n");
  __asm__ volatile("ud2");
  console_puts("after ud2\n");
  return 0;
}
