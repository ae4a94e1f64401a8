/* The guest runtime: the ABI of DESIGN.md section 8 seen from inside the guest.
 *
 * A guest program defines guest_main(); every vCPU calls it. When it returns,
 * vCPU 0 ends the VM with the returned value as exit status (out 0xF4) and
 * every other vCPU halts for good (hlt).
 *
 * Only an integer subset of x86-64 is available (no SSE/AVX/x87), so every
 * atomic and port access below is written out in inline asm with the exact
 * instruction it uses, and the guests are compiled with -mgeneral-regs-only. */
#ifndef VMFORK_GUESTS_RUNTIME_H
#define VMFORK_GUESTS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- boot info */

#define BOOT_INFO_MAGIC 0x6B464D56u /* "VMFk" little-endian */
#define BOOT_INFO_VERSION 1u
#define PAGE_SIZE 4096u

/* DESIGN.md section 8, little-endian, packed, version 1. The monitor rewrites
 * clone_id in each clone, so read it through a volatile access after a fork. */
struct __attribute__((packed)) boot_info {
  uint32_t magic;      /* BOOT_INFO_MAGIC */
  uint32_t version;    /* BOOT_INFO_VERSION */
  uint32_t vcpu_count; /* number of vCPUs of the VM */
  uint32_t reserved;
  uint64_t ram_bytes; /* guest RAM size */
  uint64_t clone_id;  /* 0 in an original VM, k in clone k */
  uint64_t free_base; /* first byte the guest may use freely (4 KiB aligned) */
  uint64_t free_end;  /* bottom of the vCPU stacks */
};

_Static_assert(sizeof(struct boot_info) == 48, "boot info is 48 bytes");
_Static_assert(offsetof(struct boot_info, magic) == 0, "magic at 0");
_Static_assert(offsetof(struct boot_info, version) == 4, "version at 4");
_Static_assert(offsetof(struct boot_info, vcpu_count) == 8, "vcpu_count at 8");
_Static_assert(offsetof(struct boot_info, reserved) == 12, "reserved at 12");
_Static_assert(offsetof(struct boot_info, ram_bytes) == 16, "ram_bytes at 16");
_Static_assert(offsetof(struct boot_info, clone_id) == 24, "clone_id at 24");
_Static_assert(offsetof(struct boot_info, free_base) == 32, "free_base at 32");
_Static_assert(offsetof(struct boot_info, free_end) == 40, "free_end at 40");

/* Reads clone_id afresh (the monitor changes it under the guest's feet). The
 * block is page aligned, so this is one aligned 8-byte load; the address is
 * computed as an integer because the packed member's own address is not known
 * to be aligned (clang refuses to take it). */
static inline uint64_t boot_clone_id(const struct boot_info* bi) {
  const uintptr_t at = (uintptr_t)bi + offsetof(struct boot_info, clone_id);
  return *(const volatile uint64_t*)at;
}

/* Supplied by each guest program; called on every vCPU. */
int guest_main(unsigned vcpu, const struct boot_info* bi);

/* ------------------------------------------------------------------ port I/O */

#define PORT_CONSOLE 0x3F8  /* out 8-bit: one console byte */
#define PORT_EXIT 0x0F4     /* out 32-bit: end the VM with this status */
#define PORT_FORK 0x510     /* out 32-bit N: fork N clones */
#define PORT_SNAPSHOT 0x511 /* out 32-bit: snapshot into the monitor's directory */

static inline void outb(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %b0, %w1" : : "a"(value), "d"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %w1" : : "a"(value), "d"(port) : "memory");
}

/* Ends the VM (every vCPU stops) with this exit status. */
__attribute__((noreturn)) void vm_exit(uint32_t status);

/* Stops this vCPU for good. */
__attribute__((noreturn)) void vcpu_halt(void);

/* Forks n clones of the whole VM (every vCPU is paused and snapshotted).
 * Returns 0 in the original, k (1..n) in clone k, and a negative value if
 * the monitor refused (no clone started). Other vCPUs resume unchanged. */
static inline int vm_fork(uint32_t n) {
  uint64_t rax = n; /* "+a": the monitor writes the result into RAX */
  __asm__ volatile("outl %%eax, %%dx" : "+a"(rax) : "d"((uint16_t)PORT_FORK) : "memory");
  return (int)(int32_t)(uint32_t)rax; /* -1 may come as 32- or 64-bit all ones */
}

/* Snapshots the whole VM into the directory the monitor was given (run
 * --snapshot DIR). Returns 0 in the running VM once the snapshot is written,
 * k in clone k restored from it, and a negative value when it failed or no
 * directory was given. Other vCPUs resume unchanged. */
static inline int vm_snapshot(void) {
  uint64_t rax = 0;
  __asm__ volatile("outl %%eax, %%dx" : "+a"(rax) : "d"((uint16_t)PORT_SNAPSHOT) : "memory");
  return (int)(int32_t)(uint32_t)rax;
}

/* Like vm_fork(), and also reads the TSC just before the out and right after
 * it (the instruction after the out saves RAX, the next one is rdtsc), for the
 * guest's own view of fork latency. */
static inline int vm_fork_timed(uint32_t n, uint64_t* tsc_before, uint64_t* tsc_after) {
  uint32_t lo0, hi0, lo1, hi1;
  uint64_t result;
  __asm__ volatile(
      "rdtsc\n\t"
      "movl %%eax, %[lo0]\n\t"
      "movl %%edx, %[hi0]\n\t"
      "movl %[n], %%eax\n\t"
      "movl %[port], %%edx\n\t"
      "outl %%eax, %%dx\n\t"
      "movq %%rax, %[result]\n\t"
      "rdtsc\n\t"
      : [lo0] "=&r"(lo0), [hi0] "=&r"(hi0), [result] "=&r"(result), "=&a"(lo1), "=&d"(hi1)
      : [n] "r"(n), [port] "i"(PORT_FORK)
      : "memory");
  *tsc_before = ((uint64_t)hi0 << 32) | lo0;
  *tsc_after = ((uint64_t)hi1 << 32) | lo1;
  return (int)(int32_t)(uint32_t)result;
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
  return ((uint64_t)hi << 32) | lo;
}

/* ------------------------------------------------------------------- console */

/* One byte per out. Lines from different vCPUs may interleave: print from one
 * vCPU at a time (every program here prints from vCPU 0 only). */
void console_putc(char c);
void console_puts(const char* s); /* no newline appended */
void console_put_u64(uint64_t value);
void console_put_i64(int64_t value);
void console_put_hex(uint64_t value); /* "0x" and lower-case digits, no padding */

/* ------------------------------------------------------------------- atomics */

static inline void compiler_barrier(void) {
  __asm__ volatile("" : : : "memory");
}

/* Spin-wait hint; also a compiler barrier so polled loads are redone. */
static inline void cpu_relax(void) {
  __asm__ volatile("pause" : : : "memory");
}

/* Plain loads and stores are atomic for aligned words on x86-64, and TSO keeps
 * them ordered (except a store followed by a load of another address). */
static inline uint32_t atomic_load32(const volatile uint32_t* p) {
  return *p;
}
static inline uint64_t atomic_load64(const volatile uint64_t* p) {
  return *p;
}
static inline void atomic_store32(volatile uint32_t* p, uint32_t v) {
  compiler_barrier();
  *p = v;
}
static inline void atomic_store64(volatile uint64_t* p, uint64_t v) {
  compiler_barrier();
  *p = v;
}

/* xchg with memory is always locked: a full barrier. */
static inline uint32_t atomic_xchg32(volatile uint32_t* p, uint32_t v) {
  __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
  return v;
}

/* Returns the old value (lock xadd). */
static inline uint64_t atomic_fetch_add64(volatile uint64_t* p, uint64_t v) {
  __asm__ volatile("lock xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory", "cc");
  return v;
}

static inline uint32_t atomic_fetch_add32(volatile uint32_t* p, uint32_t v) {
  __asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory", "cc");
  return v;
}

static inline void atomic_inc64(volatile uint64_t* p) {
  __asm__ volatile("lock incq %0" : "+m"(*p) : : "memory", "cc");
}

static inline void atomic_inc32(volatile uint32_t* p) {
  __asm__ volatile("lock incl %0" : "+m"(*p) : : "memory", "cc");
}

/* Returns the value found; the swap happened iff it equals expected. */
static inline uint32_t atomic_cmpxchg32(volatile uint32_t* p, uint32_t expected, uint32_t desired) {
  __asm__ volatile("lock cmpxchgl %2, %1"
                   : "+a"(expected), "+m"(*p)
                   : "r"(desired)
                   : "memory", "cc");
  return expected;
}

/* ------------------------------------------------------------------ spinlock */

/* Test-and-test-and-set lock; zero-initialized means unlocked. */
struct spinlock {
  volatile uint32_t locked;
};

static inline void spin_lock(struct spinlock* l) {
  while (atomic_xchg32(&l->locked, 1) != 0) {
    while (atomic_load32(&l->locked) != 0)
      cpu_relax();
  }
}

static inline void spin_unlock(struct spinlock* l) {
  atomic_store32(&l->locked, 0);
}

/* ------------------------------------------------------------------- barrier */

/* Sense-reversing barrier for n vCPUs; zero-initialized, reusable, and every
 * caller passes the same n (usually boot_info.vcpu_count). */
struct barrier {
  volatile uint32_t arrived;
  volatile uint32_t generation;
};

void barrier_wait(struct barrier* b, uint32_t n);

/* -------------------------------------------------------------------- memory */

/* gcc may emit calls to these even in freestanding code. */
void* memset(void* dst, int c, size_t n);
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);

/* Rounds up to a 4 KiB boundary. */
static inline uint64_t page_align_up(uint64_t x) {
  return (x + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
}

#endif /* VMFORK_GUESTS_RUNTIME_H */
