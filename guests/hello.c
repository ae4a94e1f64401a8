/* hello: the smallest guest. vCPU 0 prints one line and the VM exits 0; every
 * other vCPU returns at once and halts.
 * Output: "hello from vmfork\n". Exit status: 0. */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  console_puts("hello from vmfork\n");
  return 0;
}
