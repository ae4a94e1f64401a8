/* snapshotme: snapshots itself (port 0x511, DESIGN.md section 8) one
 * generation after another, and checks its memory in every clone restored
 * from a snapshot.
 *
 * Generation g (1, 2, ...) writes its own 16 pages, one page near the top of
 * the free memory, and rewrites the first page of generation g-1; then vCPU 0
 * asks for a snapshot while every other vCPU spins, counting.
 * - 0 (the snapshot is written): the VM scribbles over every generation's
 *   pages (the snapshot must not see it), prints "snapshotme gen <g>:
 *   snapshot taken" and exits 0.
 * - k (clone k restored from the snapshot): checks every generation's pages,
 *   boot-info clone_id == k and that the other vCPUs count on, prints
 *   "snapshotme gen <g> clone <k>: restored, memory ok", and goes on with
 *   generation g+1 (a restore given --snapshot writes a diff snapshot).
 * - negative (no directory, or the directory is taken): prints "snapshotme
 *   gen <g>: no snapshot" and exits 0.
 * A failed check prints "snapshotme gen <g>: ..." and exits 1. */
#include "runtime.h"

#define GEN_PAGES 16u
#define MAX_GENS 8u
#define WORDS_PER_PAGE (PAGE_SIZE / 8u)

static struct {
  uint64_t generation;
  uint64_t counters[64]; /* per vCPU, after the first */
} volatile state __attribute__((aligned(PAGE_SIZE)));

static uint64_t value(uint64_t gen, uint64_t page, uint64_t word) {
  uint64_t x = gen * 0x9e3779b97f4a7c15u ^ page * 0xbf58476d1ce4e5b9u ^ word;
  x ^= x >> 31;
  return x * 0x94d049bb133111ebu;
}

/* Generation g's pages: GEN_PAGES from free_base, then one near free_end. */
static volatile uint64_t* gen_page(const struct boot_info* bi, uint64_t gen, uint64_t page) {
  if (page == GEN_PAGES) return (volatile uint64_t*)(bi->free_end - gen * 8u * PAGE_SIZE);
  return (volatile uint64_t*)(bi->free_base + ((gen - 1) * GEN_PAGES + page) * PAGE_SIZE);
}

/* Which generation's values page `page` of generation g holds now, at
 * generation `now`: its own, unless generation g+1 rewrote its first page. */
static uint64_t owner(uint64_t gen, uint64_t page, uint64_t now) {
  return page == 0 && gen < now ? gen + 1 : gen;
}

static void fill(volatile uint64_t* p, uint64_t gen, uint64_t page) {
  for (uint64_t w = 0; w < WORDS_PER_PAGE; ++w)
    p[w] = value(gen, page, w);
}

static int check(const struct boot_info* bi, uint64_t now) {
  for (uint64_t gen = 1; gen <= now; ++gen) {
    for (uint64_t page = 0; page <= GEN_PAGES; ++page) {
      const volatile uint64_t* p = gen_page(bi, gen, page);
      const uint64_t by = owner(gen, page, now);
      for (uint64_t w = 0; w < WORDS_PER_PAGE; ++w) {
        if (p[w] != value(by, page, w)) return 0;
      }
    }
  }
  return 1;
}

static void say(uint64_t gen, const char* what) {
  console_puts("snapshotme gen ");
  console_put_u64(gen);
  console_puts(what);
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (vcpu != 0) {
    for (;;)
      state.counters[vcpu] = state.counters[vcpu] + 1;
  }
  for (;;) {
    const uint64_t gen = state.generation + 1;
    if (gen > MAX_GENS) {
      say(gen, ": too many generations\n");
      return 1;
    }
    state.generation = gen;
    for (uint64_t page = 0; page <= GEN_PAGES; ++page)
      fill(gen_page(bi, gen, page), gen, page);
    if (gen > 1) fill(gen_page(bi, gen - 1, 0), gen, 0);

    const int result = vm_snapshot();
    if (result < 0) {
      say(gen, ": no snapshot\n");
      vm_exit(check(bi, gen) ? 0 : 1);
    }
    if (result == 0) {
      for (uint64_t g = 1; g <= gen; ++g) {
        for (uint64_t page = 0; page <= GEN_PAGES; ++page)
          fill(gen_page(bi, g, page), 0xdead, page);
      }
      say(gen, ": snapshot taken\n");
      vm_exit(0);
    }
    if (boot_clone_id(bi) != (uint64_t)result) {
      say(gen, ": clone_id does not match RAX\n");
      vm_exit(1);
    }
    if (!check(bi, gen)) {
      say(gen, ": memory differs from the snapshot\n");
      vm_exit(1);
    }
    for (uint32_t other = 1; other < bi->vcpu_count && other < 64; ++other) {
      const uint64_t seen = state.counters[other];
      while (state.counters[other] == seen)
        cpu_relax();
    }
    say(gen, " clone ");
    console_put_u64((uint64_t)result);
    console_puts(": restored, memory ok\n");
  }
}
