/* console_tail: runs until a signal stops the monitor (tests/run/
 * stop_signal.sh). The original prints "tail: unfinished line" with no
 * newline, then forks one clone; the clone prints "tail: ready\n" (so by
 * the time that line shows, the original's bytes are out) and an unfinished
 * "tail: clone line" of its own. Both then spin. Stopped by SIGINT or
 * SIGTERM, the monitor must print each VM's unfinished line and exit 130
 * or 143. Only vCPU 0 runs (the others halt). */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  console_puts("tail: unfinished line");
  const int result = vm_fork(1);
  if (result > 0) {
    console_puts("tail: ready\n");
    console_puts("tail: clone line");
  } else if (result < 0) {
    console_puts(" (fork refused)\n");
    return 1;
  }
  for (;;)
    cpu_relax();
}
