/* exit_status_wide: vCPU 0 ends the VM with a status an exit status cannot
 * hold: 256 with 1 vCPU, 512 with 2, 0x80000000 with 3 and 0xFFFFFFFF with
 * 4 or more (the other vCPUs spin). vmfork must not exit 0, as the low 8
 * bits of each would say; it exits 255.
 * Output: "exiting with <status in hex>\n". */
#include "runtime.h"

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) {
    for (;;)
      cpu_relax();
  }
  static const uint32_t statuses[] = {256u, 512u, 0x80000000u, 0xFFFFFFFFu};
  const uint32_t index = bi->vcpu_count < 4 ? bi->vcpu_count - 1 : 3;
  console_puts("exiting with ");
  console_put_hex(statuses[index]);
  console_putc('\n');
  vm_exit(statuses[index]);
}
