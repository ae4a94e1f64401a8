/* exit_status: vCPU 0 ends the VM with status 7 (port 0xF4) while the other
 * vCPUs still run; vmfork must exit with 7.
 * Output: "exiting with 7\n". Exit status: 7. */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) {
    for (;;)
      cpu_relax();
  }
  console_puts("exiting with 7\n");
  vm_exit(7);
}
