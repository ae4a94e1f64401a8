/* snapshot_wait: busy until it is snapshotted from outside (vmfork run
 * --snapshot DIR --snapshot-after DURATION) and restored.
 *
 * Every vCPU adds to a counter of its own and to a shared total (lock xadd);
 * each keeps a 64-page ring of its own written as it goes. vCPU 0 stops the
 * VM when boot-info clone_id becomes non-zero (the monitor writes it in a
 * clone restored from the snapshot) or after about 2^32 TSC ticks (the
 * original, a second or two).
 * Output: the original prints "snapshot_wait original: done", clone k
 * "snapshot_wait clone <k>: resumed, counters ok". Exit status 0; a failed
 * check (the total differs from the sum of the counters, or a ring page
 * lost its writes) prints "snapshot_wait ...: ..." and exits 1. */
#include "runtime.h"

#define MAX_VCPUS 64u
#define RING_PAGES 64u

static struct {
  uint64_t stop;
  uint64_t total;
  uint64_t stopped;
  uint64_t counters[MAX_VCPUS];
} volatile shared __attribute__((aligned(PAGE_SIZE)));

static volatile uint64_t* ring_page(const struct boot_info* bi, unsigned vcpu, uint64_t page) {
  return (volatile uint64_t*)(bi->free_base + ((uint64_t)vcpu * RING_PAGES + page) * PAGE_SIZE);
}

/* Each ring page holds, in word 0, the count at which it was last written
 * and, in word 1, that count's complement. */
static int ring_ok(const struct boot_info* bi, unsigned vcpu) {
  for (uint64_t page = 0; page < RING_PAGES; ++page) {
    const volatile uint64_t* p = ring_page(bi, vcpu, page);
    if (p[1] != ~p[0]) return 0;
  }
  return 1;
}

static void count(const struct boot_info* bi, unsigned vcpu) {
  const uint64_t n = shared.counters[vcpu] + 1;
  volatile uint64_t* p = ring_page(bi, vcpu, n % RING_PAGES);
  p[0] = n;
  p[1] = ~n;
  shared.counters[vcpu] = n;
  atomic_fetch_add64(&shared.total, 1);
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu >= MAX_VCPUS) return 0;
  if (vcpu != 0) {
    while (atomic_load64(&shared.stop) == 0)
      count(bi, vcpu);
    atomic_fetch_add64(&shared.stopped, 1);
    return 0;
  }
  const uint64_t start = rdtsc();
  uint64_t clone_id = 0;
  while ((clone_id = boot_clone_id(bi)) == 0 && rdtsc() - start < (uint64_t)1 << 32)
    count(bi, 0);
  atomic_store64(&shared.stop, 1);
  while (atomic_load64(&shared.stopped) + 1 < bi->vcpu_count)
    cpu_relax();
  uint64_t sum = 0;
  int rings = 1;
  for (unsigned v = 0; v < bi->vcpu_count && v < MAX_VCPUS; ++v) {
    sum += shared.counters[v];
    rings = rings && ring_ok(bi, v);
  }
  console_puts("snapshot_wait ");
  if (clone_id == 0) {
    console_puts("original");
  } else {
    console_puts("clone ");
    console_put_u64(clone_id);
  }
  if (sum != shared.total || !rings) {
    console_puts(sum != shared.total ? ": total differs from the counters\n"
                                     : ": a ring page lost its writes\n");
    vm_exit(1);
  }
  console_puts(clone_id == 0 ? ": done\n" : ": resumed, counters ok\n");
  vm_exit(0);
}
