/* litmus: x86 ordering litmus tests whose forbidden outcomes must never
 * appear, between vCPUs 0 and 1 (the others halt at once).
 *
 * Each test runs "perpetually": the two vCPUs run N iterations each without
 * meeting, storing increasing values and recording what they read, and vCPU
 * 0 then looks for a forbidden pair of iterations. No barrier per iteration,
 * so the two keep overlapping for the whole test and the check costs O(N).
 *
 * - Store buffering (SB): vCPU 0 stores x = i then loads y into r0[i]; vCPU
 *   1 stores y = j then loads x into r1[j]. Iterations i and j are the
 *   forbidden r0 = r1 = 0 when neither load saw the other's store:
 *   r0[i] < j and r1[j] < i. Loads of one location see nondecreasing values,
 *   so it is enough to look at j = r0[i] + 1 for each i. Forbidden with an
 *   mfence between the store and the load, and with the store made by xchg
 *   (locked, so a full barrier): aligned, and as an 8-byte xchg across a
 *   cache line or a page (whose low half is x). Without either the outcome
 *   is allowed on x86, so that variant is not run.
 * - Message passing (MP): vCPU 0 stores data = i then flag = i; vCPU 1 loads
 *   flag into f[j] then data into d[j]. Forbidden: d[j] < f[j] (the flag of
 *   i seen, an older data): x86 keeps stores in order, and loads in order.
 *
 * Output: "<test>: ok\n" per test, or "<test>: forbidden outcome seen <n>
 * times\n" (exit 1). With 1 vCPU: "litmus: needs 2 vCPUs\n", exit 0. */
#include "runtime.h"

/* Iterations per test. Every split xchg is an exclusive section on the soft
 * engine (it stops the other vCPU), so those tests run fewer. */
#define ITERATIONS 100000u
#define SPLIT_ITERATIONS 2000u

/* x in page 0, y in page 2: each as the low half of an 8-byte word across
 * the end of a cache line (line tests) or of a page (page tests). */
static uint8_t vars[4 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
#define X_LINE ((uintptr_t)vars + 64 - 4)
#define Y_LINE ((uintptr_t)vars + 2 * PAGE_SIZE + 64 - 4)
#define X_PAGE ((uintptr_t)vars + PAGE_SIZE - 4)
#define Y_PAGE ((uintptr_t)vars + 3 * PAGE_SIZE - 4)

/* What each vCPU read, per iteration (1..N). */
static volatile uint32_t seen0[ITERATIONS + 1] __attribute__((aligned(PAGE_SIZE)));
static volatile uint32_t seen1[ITERATIONS + 1] __attribute__((aligned(PAGE_SIZE)));

static struct barrier pair_barrier __attribute__((aligned(PAGE_SIZE)));

enum store_kind { STORE_MFENCE, STORE_XCHG, STORE_XCHG_SPLIT };

static inline uint32_t load32(uintptr_t p) {
  return *(const volatile uint32_t*)p;
}

static inline void store32(uintptr_t p, uint32_t v) {
  *(volatile uint32_t*)p = v;
}

/* The store of an SB iteration and what keeps the next load after it. */
static inline void sb_store(enum store_kind kind, uintptr_t p, uint32_t v) {
  switch (kind) {
    case STORE_MFENCE:
      store32(p, v);
      __asm__ volatile("mfence" : : : "memory");
      break;
    case STORE_XCHG: {
      uint32_t old = v;
      __asm__ volatile("xchgl %0, (%1)" : "+r"(old) : "r"(p) : "memory");
      break;
    }
    case STORE_XCHG_SPLIT: {
      uint64_t old = v; /* the high half, across the boundary, stays 0 */
      __asm__ volatile("xchgq %0, (%1)" : "+r"(old) : "r"(p) : "memory");
      break;
    }
  }
}

/* One vCPU's side of SB: store `mine`, then load `theirs`. */
static void sb_side(enum store_kind kind, uintptr_t mine, uintptr_t theirs,
                    volatile uint32_t* seen, uint32_t n) {
  for (uint32_t i = 1; i <= n; i++) {
    sb_store(kind, mine, i);
    seen[i] = load32(theirs);
  }
}

static uint32_t sb_forbidden(uint32_t n) {
  uint32_t count = 0;
  for (uint32_t i = 1; i <= n; i++) {
    const uint32_t j = seen0[i] + 1; /* vCPU 1's first store vCPU 0 missed */
    if (j <= n && seen1[j] < i) count++;
  }
  return count;
}

static void mp_side(unsigned vcpu, uintptr_t data, uintptr_t flag, uint32_t n) {
  for (uint32_t i = 1; i <= n; i++) {
    if (vcpu == 0) {
      store32(data, i);
      store32(flag, i);
    } else {
      seen0[i] = load32(flag);
      seen1[i] = load32(data);
    }
  }
}

static uint32_t mp_forbidden(uint32_t n) {
  uint32_t count = 0;
  for (uint32_t i = 1; i <= n; i++) {
    if (seen1[i] < seen0[i]) count++;
  }
  return count;
}

static int report(const char* test, uint32_t forbidden) {
  console_puts(test);
  if (forbidden == 0) {
    console_puts(": ok\n");
    return 0;
  }
  console_puts(": forbidden outcome seen ");
  console_put_u64(forbidden);
  console_puts(" times\n");
  return 1;
}

/* Zeroes the locations (vCPU 0), then both start together. */
static void start_test(unsigned vcpu, uintptr_t a, uintptr_t b) {
  if (vcpu == 0) {
    store32(a, 0);
    store32(b, 0);
  }
  barrier_wait(&pair_barrier, 2);
}

static int store_buffering(unsigned vcpu, const char* test, enum store_kind kind, uintptr_t x,
                           uintptr_t y, uint32_t n) {
  start_test(vcpu, x, y);
  if (vcpu == 0) {
    sb_side(kind, x, y, seen0, n);
  } else {
    sb_side(kind, y, x, seen1, n);
  }
  barrier_wait(&pair_barrier, 2);
  return vcpu == 0 ? report(test, sb_forbidden(n)) : 0;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (bi->vcpu_count < 2) {
    console_puts("litmus: needs 2 vCPUs\n");
    return 0;
  }
  if (vcpu > 1) return 0;
  int failures = 0;
  failures += store_buffering(vcpu, "store buffering, mfence", STORE_MFENCE, X_LINE, Y_LINE,
                              ITERATIONS);
  failures += store_buffering(vcpu, "store buffering, xchg store", STORE_XCHG, X_LINE, Y_LINE,
                              ITERATIONS);
  failures += store_buffering(vcpu, "store buffering, xchg store across a cache line",
                              STORE_XCHG_SPLIT, X_LINE, Y_LINE, SPLIT_ITERATIONS);
  failures += store_buffering(vcpu, "store buffering, xchg store across a page", STORE_XCHG_SPLIT,
                              X_PAGE, Y_PAGE, SPLIT_ITERATIONS);

  start_test(vcpu, X_LINE, Y_LINE);
  mp_side(vcpu, X_LINE, Y_LINE, ITERATIONS);
  barrier_wait(&pair_barrier, 2);
  if (vcpu == 0) failures += report("message passing", mp_forbidden(ITERATIONS));
  return failures == 0 ? 0 : 1;
}
