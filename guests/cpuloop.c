/* cpuloop: the interpreter speed benchmark (DESIGN.md section 10: at least
 * 100 million guest instructions per second per vCPU on an integer loop).
 * vCPU 0 runs ITERATIONS rounds of a xorshift step with adds and rotates
 * (15 integer instructions per round with gcc 12 -O2: 1.5e9 in all, one
 * dependency chain); the other vCPUs halt.
 * Output: "cpuloop checksum 0x<CPULOOP_EXPECTED>\n" and exit 0; a wrong result
 * prints "cpuloop checksum 0x<got> expected 0x<want>\n" and exits 1. */
#include "runtime.h"

#define ITERATIONS 100000000u
/* Computed by running cpuloop_run() natively with the same ITERATIONS. */
#define CPULOOP_EXPECTED 0x4893ac57819f6f50u

/* noinline and the asm barrier keep gcc from folding the loop at compile time. */
__attribute__((noinline)) static uint64_t cpuloop_run(uint64_t seed, uint32_t iterations) {
  uint64_t x = seed;
  uint64_t sum = 0;
  for (uint32_t i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sum += x ^ i;
    sum = (sum << 5) | (sum >> 59);
  }
  return sum;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  (void)bi;
  if (vcpu != 0) return 0;
  uint64_t seed = 0x2545F4914F6CDD1Du;
  __asm__ volatile("" : "+r"(seed)); /* opaque to the optimizer */
  const uint64_t sum = cpuloop_run(seed, ITERATIONS);
  console_puts("cpuloop checksum ");
  console_put_hex(sum);
  if (sum != CPULOOP_EXPECTED) {
    console_puts(" expected ");
    console_put_hex(CPULOOP_EXPECTED);
    console_putc('\n');
    return 1;
  }
  console_putc('\n');
  return 0;
}
