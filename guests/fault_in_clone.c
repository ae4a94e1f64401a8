/* fault_in_clone: forks one clone; the clone executes ud2 and fails, the
 * original goes on and exits 0. One VM failing must not stop another.
 * Output: "[vm0] original ok" only. Exit status of vmfork: 1 (the clone's). */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  const int k = vm_fork(1);
  if (k < 0) {
    console_puts("fork failed\n");
    return 2;
  }
  if (k > 0) __asm__ volatile("ud2");
  console_puts("original ok\n");
  return 0;
}
