/* fault_outside_ram: vCPU 0 writes one page above the top of its RAM. The
 * VM must end alone with an error naming the vCPU, the RIP and the cause.
 * Output: "before the write\n". Exit status: the monitor's error status (1). */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) {
    for (;;)
      cpu_relax();
  }
  console_puts("before the write\n");
  volatile unsigned long* beyond = (volatile unsigned long*)(bi->ram_bytes + 4096);
  *beyond = 1;
  console_puts("after the write\n");
  return 0;
}
