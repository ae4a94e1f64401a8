/* atomics: every legal x86 atomic is exact, whatever its alignment.
 *
 * Every vCPU hammers counters with `lock add`, `lock xadd`, `lock cmpxchg`
 * (incrementing what it last saw), and an `xchg` spinlock around a plain
 * increment, each at three
 * placements (aligned; across a 64-byte cache line; across a 4 KiB page) and
 * two widths (4 and 8 bytes): 24 counters, each at an address of its own.
 * vCPU 0 then checks every total against the operations the vCPUs counted
 * (with aligned lock xadd). Then it forks one clone, and the original
 * and the clone both hammer again, on pages that are now shared copy-on-write
 * (the first locked access to each page breaks its sharing, for a split one
 * on either side of the boundary), and each checks the totals in its own
 * memory.
 *
 * Output (the same for any number of vCPUs): for each check, in each VM,
 * "<phase>: <operation> <placement> <n>-byte ok\n", phase "before fork" (the
 * original only) or "after fork" (the original and the clone); then "atomics
 * ok\n". A wrong total prints "<phase>: <operation> <placement> <n>-byte:
 * <total> expected <n>\n" and the VM exits 1. */
#include "runtime.h"

/* Operations per vCPU and phase, at least. Split operations are far
 * costlier on the soft engine (each one stops the other vCPUs), so there are
 * fewer of them. A vCPU keeps going on a split counter until every vCPU has
 * done its share, so that they all contend for it for as long as the
 * slowest needs (vCPU threads do not start together on a busy host): the
 * totals are then counted, not known in advance. */
#define ALIGNED_ROUNDS 8000u
#define SPLIT_ROUNDS 64u

enum op { OP_ADD, OP_XADD, OP_CMPXCHG, OP_XCHG, OPS };
enum placement { ALIGNED, SPLIT_LINE, SPLIT_PAGE, PLACEMENTS };
#define WIDTHS 2 /* 4 and 8 bytes */

static const char* const op_names[OPS] = {"lock add", "lock xadd", "lock cmpxchg",
                                          "xchg spinlock"};
static const char* const placement_names[PLACEMENTS] = {"aligned", "split line", "split page"};

/* Page 0: the aligned counters (a cache line each) and the split-line ones
 * (each across the boundary between two lines). Pages 1 to 8: one boundary
 * per split-page counter, at the start of page k + 1 for counter k. */
#define ARENA_PAGES 9u
static uint8_t arena[ARENA_PAGES * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
/* The plain counters the xchg spinlocks protect, a cache line each. */
static volatile uint64_t guarded[PLACEMENTS][WIDTHS][8] __attribute__((aligned(PAGE_SIZE)));
static struct barrier phase_barrier __attribute__((aligned(PAGE_SIZE)));
/* Per phase and split counter, the vCPUs that have done their share; and per
 * counter, what every vCPU added to it (lock xadd, aligned). */
static volatile uint64_t shares_done[2][OPS][PLACEMENTS][WIDTHS]
    __attribute__((aligned(PAGE_SIZE)));
static volatile uint64_t operations[OPS][PLACEMENTS][WIDTHS] __attribute__((aligned(PAGE_SIZE)));

static unsigned width_bytes(unsigned w) {
  return w == 0 ? 4u : 8u;
}

/* Where counter (op, placement, width) lives. */
static uintptr_t counter_address(unsigned op, unsigned placement, unsigned w) {
  const uintptr_t base = (uintptr_t)arena;
  const uintptr_t k = op * WIDTHS + w; /* 0..7 */
  const uintptr_t half = width_bytes(w) / 2;
  switch (placement) {
    case ALIGNED:
      return base + 64 * k;
    case SPLIT_LINE:
      return base + 0x800 + 128 * k + 64 - half;
    default:
      return base + (k + 1) * PAGE_SIZE - half;
  }
}

/* ------------------------------------------------------------- the atomics */
/* Every one takes the operand's address in a register: the operand may be
 * misaligned, so it is never a C object of its type. */

static inline void lock_add(uintptr_t p, unsigned w) {
  if (w == 0) {
    __asm__ volatile("lock addl $1, (%0)" : : "r"(p) : "memory", "cc");
  } else {
    __asm__ volatile("lock addq $1, (%0)" : : "r"(p) : "memory", "cc");
  }
}

static inline void lock_xadd(uintptr_t p, unsigned w) {
  if (w == 0) {
    uint32_t v = 1;
    __asm__ volatile("lock xaddl %0, (%1)" : "+r"(v) : "r"(p) : "memory", "cc");
  } else {
    uint64_t v = 1;
    __asm__ volatile("lock xaddq %0, (%1)" : "+r"(v) : "r"(p) : "memory", "cc");
  }
}

/* A plain load: not atomic across a line, which a cmpxchg loop tolerates
 * (a torn value fails the compare and returns the real one). */
static inline uint64_t plain_load(uintptr_t p, unsigned w) {
  if (w == 0) return *(const volatile uint32_t*)p;
  return *(const volatile uint64_t*)p;
}

/* One lock cmpxchg from *seen to *seen + 1; *seen becomes what memory held.
 * Returns 1 if it swapped. Single attempts, not a loop to success: a vCPU
 * whose compares keep failing (another one always increments in between,
 * which x86 allows) still does its share of attempts. */
static inline unsigned cmpxchg_attempt(uintptr_t p, unsigned w, uint64_t* seen) {
  if (w == 0) {
    const uint32_t expected = (uint32_t)*seen;
    uint32_t found = expected;
    __asm__ volatile("lock cmpxchgl %2, (%1)"
                     : "+a"(found)
                     : "r"(p), "r"(expected + 1)
                     : "memory", "cc");
    *seen = found == expected ? expected + 1u : found;
    return found == expected;
  }
  const uint64_t expected = *seen;
  uint64_t found = expected;
  __asm__ volatile("lock cmpxchgq %2, (%1)"
                   : "+a"(found)
                   : "r"(p), "r"(expected + 1)
                   : "memory", "cc");
  *seen = found == expected ? expected + 1 : found;
  return found == expected;
}

static inline uint64_t xchg(uintptr_t p, unsigned w, uint64_t value) {
  if (w == 0) {
    uint32_t v = (uint32_t)value;
    __asm__ volatile("xchgl %0, (%1)" : "+r"(v) : "r"(p) : "memory");
    return v;
  }
  __asm__ volatile("xchgq %0, (%1)" : "+r"(value) : "r"(p) : "memory");
  return value;
}

/* Test-and-test-and-set on the lock word at p; xchg to take and to release
 * it (a plain store of a word across a line would not be one access). */
static inline void xchg_locked_increment(uintptr_t p, unsigned placement, unsigned w) {
  while (xchg(p, w, 1) != 0) {
    while (plain_load(p, w) != 0)
      cpu_relax();
  }
  guarded[placement][w][0] = guarded[placement][w][0] + 1;
  xchg(p, w, 0);
}

/* One operation on counter (op, placement, w); returns how much it added
 * (0 for a cmpxchg whose compare failed). `seen`: the cmpxchg's guess. */
static unsigned hammer_one(unsigned op, unsigned placement, unsigned w, uint64_t* seen) {
  const uintptr_t p = counter_address(op, placement, w);
  switch (op) {
    case OP_ADD:
      lock_add(p, w);
      return 1;
    case OP_XADD:
      lock_xadd(p, w);
      return 1;
    case OP_CMPXCHG:
      return cmpxchg_attempt(p, w, seen);
    default:
      xchg_locked_increment(p, placement, w);
      return 1;
  }
}

/* The aligned counters all at once; then each split counter in turn, every
 * vCPU on it until all have done SPLIT_ROUNDS operations. Each vCPU adds
 * what it added to `operations`. */
static void hammer(uint32_t vcpus, unsigned phase) {
  uint64_t added[OPS][WIDTHS] = {{0}};
  uint64_t seen[OPS][WIDTHS] = {{0}};
  for (uint32_t round = 0; round < ALIGNED_ROUNDS; round++) {
    for (unsigned op = 0; op < OPS; op++) {
      for (unsigned w = 0; w < WIDTHS; w++)
        added[op][w] += hammer_one(op, ALIGNED, w, &seen[op][w]);
    }
  }
  for (unsigned op = 0; op < OPS; op++) {
    for (unsigned w = 0; w < WIDTHS; w++)
      atomic_fetch_add64(&operations[op][ALIGNED][w], added[op][w]);
  }
  for (unsigned op = 0; op < OPS; op++) {
    for (unsigned placement = SPLIT_LINE; placement < PLACEMENTS; placement++) {
      for (unsigned w = 0; w < WIDTHS; w++) {
        volatile uint64_t* done = &shares_done[phase][op][placement][w];
        uint64_t count = 0;
        uint64_t total = 0;
        uint64_t guess = 0;
        while (atomic_load64(done) < vcpus) {
          total += hammer_one(op, placement, w, &guess);
          if (++count == SPLIT_ROUNDS) atomic_inc64(done);
        }
        atomic_fetch_add64(&operations[op][placement][w], total);
      }
    }
  }
}

/* ------------------------------------------------------------- the checks */

static int check_phase(const char* phase) {
  int failures = 0;
  for (unsigned op = 0; op < OPS; op++) {
    for (unsigned placement = 0; placement < PLACEMENTS; placement++) {
      for (unsigned w = 0; w < WIDTHS; w++) {
        const uint64_t expected = operations[op][placement][w];
        const uintptr_t p = counter_address(op, placement, w);
        uint64_t total = plain_load(p, w);
        int ok = total == expected;
        if (op == OP_XCHG) {
          ok = total == 0; /* released */
          total = guarded[placement][w][0];
          ok = ok && total == expected;
        }
        console_puts(phase);
        console_puts(": ");
        console_puts(op_names[op]);
        console_putc(' ');
        console_puts(placement_names[placement]);
        console_putc(' ');
        console_put_u64(width_bytes(w));
        if (ok) {
          console_puts("-byte ok\n");
          continue;
        }
        console_puts("-byte: ");
        console_put_u64(total);
        console_puts(" expected ");
        console_put_u64(expected);
        console_putc('\n');
        failures++;
      }
    }
  }
  return failures;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  const uint32_t vcpus = bi->vcpu_count;
  barrier_wait(&phase_barrier, vcpus); /* start together to contend */
  hammer(vcpus, 0);
  barrier_wait(&phase_barrier, vcpus);

  if (vcpu == 0) {
    if (check_phase("before fork") != 0) vm_exit(1);
    /* The other vCPUs wait at the barrier below; the clone starts there too. */
    if (vm_fork(1) < 0) {
      console_puts("fork failed\n");
      vm_exit(2);
    }
  }
  barrier_wait(&phase_barrier, vcpus);
  hammer(vcpus, 1);
  barrier_wait(&phase_barrier, vcpus);
  if (vcpu != 0) return 0;
  if (check_phase("after fork") != 0) return 1;
  console_puts("atomics ok\n");
  return 0;
}
