/* mix: the soft engine on realistic code (issue 13 part 3): linked-list
 * find, reverse and merge sort, small integer matrix multiply and add, a
 * state machine scanning a text of numbers, and a CRC-16 over the results
 * of each, for MIX_GUEST_ITERATIONS rounds (mix/mix_work.c, the same C code
 * `vmfork bench cpu` runs natively and under qemu-x86_64). vCPU 0 works; the
 * other vCPUs halt.
 * Output: "mix iterations <N> crc 0x<crc>\n" and exit 0 when the CRC is
 * MIX_GUEST_EXPECTED_CRC; otherwise "... expected 0x<want>\n" and exit 1. */
#include "mix/mix_guest.h"
#include "mix/mix_work.h"
#include "runtime.h"

static struct mix_workspace workspace;

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  uint32_t seed = MIX_SEED;
  __asm__ volatile("" : "+r"(seed)); /* opaque to the optimizer */
  const uint16_t crc = mix_run(&workspace, seed, MIX_GUEST_ITERATIONS);
  console_puts("mix iterations ");
  console_put_u64(MIX_GUEST_ITERATIONS);
  console_puts(" crc ");
  console_put_hex(crc);
  if (crc != MIX_GUEST_EXPECTED_CRC) {
    console_puts(" expected ");
    console_put_hex(MIX_GUEST_EXPECTED_CRC);
    console_putc('\n');
    return 1;
  }
  console_putc('\n');
  return 0;
}
