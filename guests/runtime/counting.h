/* The busy work of snapshot_wait and api_worker: every vCPU adds to a
 * counter of its own and to a shared total (lock xadd), and keeps a 64-page
 * ring of its own written as it goes (COW faults in every clone). A copy of
 * the VM taken at any instant (a snapshot, a fork from outside) must find the
 * total equal to the sum of the counters once every vCPU stopped, and every
 * ring page whole. */
#ifndef VMFORK_GUESTS_COUNTING_H
#define VMFORK_GUESTS_COUNTING_H

#include "runtime.h"

#define COUNTING_MAX_VCPUS 64u
#define COUNTING_RING_PAGES 64u

static struct {
  uint64_t stop;
  uint64_t total;
  uint64_t stopped;
  uint64_t counters[COUNTING_MAX_VCPUS];
} volatile counting __attribute__((aligned(PAGE_SIZE)));

static volatile uint64_t* counting_ring_page(const struct boot_info* bi, unsigned vcpu,
                                             uint64_t page) {
  return (volatile uint64_t*)(bi->free_base +
                              ((uint64_t)vcpu * COUNTING_RING_PAGES + page) * PAGE_SIZE);
}

/* Each ring page holds, in word 0, the count at which it was last written
 * and, in word 1, that count's complement; a page not written yet (its vCPU
 * counted fewer than COUNTING_RING_PAGES times) holds zeros. */
static void counting_step(const struct boot_info* bi, unsigned vcpu) {
  const uint64_t n = counting.counters[vcpu] + 1;
  volatile uint64_t* p = counting_ring_page(bi, vcpu, n % COUNTING_RING_PAGES);
  p[0] = n;
  p[1] = ~n;
  counting.counters[vcpu] = n;
  atomic_fetch_add64(&counting.total, 1);
}

/* A vCPU other than 0: counts until vCPU 0 says stop. */
static void counting_until_stopped(const struct boot_info* bi, unsigned vcpu, int relax) {
  while (atomic_load64(&counting.stop) == 0) {
    counting_step(bi, vcpu);
    for (int i = 0; i < relax; ++i)
      cpu_relax();
  }
  atomic_fetch_add64(&counting.stopped, 1);
}

/* vCPU 0: stops the others and checks. NULL when all is well, else what failed. */
static const char* counting_stop_and_check(const struct boot_info* bi) {
  atomic_store64(&counting.stop, 1);
  while (atomic_load64(&counting.stopped) + 1 < bi->vcpu_count)
    cpu_relax();
  uint64_t sum = 0;
  for (unsigned v = 0; v < bi->vcpu_count && v < COUNTING_MAX_VCPUS; ++v) {
    sum += counting.counters[v];
    for (uint64_t page = 0; page < COUNTING_RING_PAGES; ++page) {
      const volatile uint64_t* p = counting_ring_page(bi, v, page);
      const int never_written =
          p[0] == 0 && p[1] == 0 && counting.counters[v] < COUNTING_RING_PAGES;
      if (p[1] != ~p[0] && !never_written) return "a ring page lost its writes";
    }
  }
  return sum == counting.total ? 0 : "total differs from the counters";
}

#endif
