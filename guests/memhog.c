/* memhog: many clones of a VM with most of its memory in use.
 *
 * vCPU 0 fills free memory (capped at MAX_DATA_BYTES) with 8-byte values
 * value(i) and records their checksum, then forks CLONES clones. Clone k
 * rewrites the pages p with p % 16 == k % 16 (1/16 of them, different for
 * every k) and checks every word of its view: its own pages hold its values,
 * the rest still hold the original ones. The original checks that its data
 * and checksum are unchanged. Other vCPUs halt at once.
 *
 * Output: the original prints "memhog original ok\n", clone k (1..8) prints
 * "memhog clone <k> ok\n"; each VM exits 0. A failed check prints
 * "memhog <vm>: ..." and exits 1; a failed fork prints "memhog: fork failed\n". */
#include "runtime.h"

#define CLONES 8u
#define STRIDE 16u                            /* a clone writes 1 page in STRIDE */
#define MAX_DATA_BYTES (256ull * 1024 * 1024) /* bounds the run time on the soft engine */
#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))

static uint64_t data_checksum; /* written before the fork by vCPU 0 */

static uint64_t value(uint64_t i) {
  return (i + 1) * 0x9E3779B97F4A7C15u;
}
static uint64_t clone_value(uint64_t i, uint64_t k) {
  return value(i) ^ (k << 56) ^ 0xC10Eu;
}
static int clone_owns(uint64_t page, uint64_t k) {
  return page % STRIDE == k % STRIDE;
}

static uint64_t checksum_step(uint64_t sum, uint64_t v) {
  sum ^= v;
  return (sum << 7) | (sum >> 57);
}

static void print_vm(uint64_t clone_id) {
  if (clone_id == 0) {
    console_puts("original");
  } else {
    console_puts("clone ");
    console_put_u64(clone_id);
  }
}

static int report_mismatch(uint64_t clone_id, uint64_t word, uint64_t expected, uint64_t found) {
  console_puts("memhog ");
  print_vm(clone_id);
  console_puts(": word ");
  console_put_u64(word);
  console_puts(" expected ");
  console_put_hex(expected);
  console_puts(" found ");
  console_put_hex(found);
  console_putc('\n');
  return 1;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) return 0;
  const uint64_t base = page_align_up(bi->free_base);
  uint64_t bytes = bi->free_end > base ? (bi->free_end - base) & ~(uint64_t)(PAGE_SIZE - 1) : 0;
  if (bytes > MAX_DATA_BYTES) bytes = MAX_DATA_BYTES;
  if (bytes < STRIDE * PAGE_SIZE) {
    console_puts("memhog: not enough free memory\n");
    return 2;
  }
  volatile uint64_t* data = (volatile uint64_t*)(uintptr_t)base;
  const uint64_t words = bytes / sizeof(uint64_t);

  uint64_t sum = 0;
  for (uint64_t i = 0; i < words; i++) {
    data[i] = value(i);
    sum = checksum_step(sum, value(i));
  }
  data_checksum = sum;

  const int fork_result = vm_fork(CLONES);
  if (fork_result < 0) {
    console_puts("memhog: fork failed\n");
    return 1;
  }
  const uint64_t clone_id = boot_clone_id(bi);
  if ((uint64_t)fork_result != clone_id) {
    console_puts("memhog: vm_fork returned ");
    console_put_u64((uint64_t)fork_result);
    console_puts(" but boot info says clone ");
    console_put_u64(clone_id);
    console_putc('\n');
    return 1;
  }

  if (clone_id != 0) {
    for (uint64_t i = 0; i < words; i++) {
      if (clone_owns(i / WORDS_PER_PAGE, clone_id)) data[i] = clone_value(i, clone_id);
    }
  }
  sum = 0;
  for (uint64_t i = 0; i < words; i++) {
    const uint64_t found = data[i];
    const int own = clone_id != 0 && clone_owns(i / WORDS_PER_PAGE, clone_id);
    const uint64_t expected = own ? clone_value(i, clone_id) : value(i);
    if (found != expected) return report_mismatch(clone_id, i, expected, found);
    sum = checksum_step(sum, own ? value(i) : found);
  }
  if (sum != data_checksum) {
    console_puts("memhog ");
    print_vm(clone_id);
    console_puts(": checksum ");
    console_put_hex(sum);
    console_puts(" expected ");
    console_put_hex(data_checksum);
    console_putc('\n');
    return 1;
  }
  console_puts("memhog ");
  print_vm(clone_id);
  console_puts(" ok\n");
  return 0;
}
