/* port_width: vCPU 0 writes one byte (outb) to the fork port, which takes
 * 32 bits (outl). The VM fails with an error naming the fork port and the
 * width it takes (the port is known: only the width is wrong).
 * Output: "outb to the fork port\n". Exit status 1 (the VM failed). */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) {
    for (;;)
      cpu_relax();
  }
  console_puts("outb to the fork port\n");
  outb(PORT_FORK, 1);
  console_puts("port_width: the outb was accepted\n");
  return 2;
}
