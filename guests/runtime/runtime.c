/* The guest runtime's out-of-line half: entry, exit, console, barrier and the
 * memory functions gcc may call. See runtime.h for the contract. */
#include "runtime.h"

/* Called by _start (start.S) on every vCPU. */
__attribute__((noreturn, used)) void runtime_main(uint64_t vcpu, const struct boot_info* bi);

void runtime_main(uint64_t vcpu, const struct boot_info* bi) {
  if (bi->magic != BOOT_INFO_MAGIC || bi->version != BOOT_INFO_VERSION) {
    /* Nothing here can be trusted, not even vcpu_count: only vCPU 0 says so. */
    if (vcpu == 0) {
      console_puts("vmfork runtime: bad boot info\n");
      vm_exit(125);
    }
    vcpu_halt();
  }
  int status = guest_main((unsigned)vcpu, bi);
  if (vcpu == 0) vm_exit((uint32_t)status);
  vcpu_halt();
}

void vm_exit(uint32_t status) {
  outl(PORT_EXIT, status);
  /* The monitor stops every vCPU on the out; never fall through if it did not. */
  vcpu_halt();
}

void vcpu_halt(void) {
  for (;;)
    __asm__ volatile("hlt" : : : "memory");
}

void console_putc(char c) {
  outb(PORT_CONSOLE, (uint8_t)c);
}

void console_puts(const char* s) {
  while (*s != '\0')
    console_putc(*s++);
}

void console_put_u64(uint64_t value) {
  char digits[20]; /* 2^64 - 1 has 20 decimal digits */
  unsigned n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0)
    console_putc(digits[--n]);
}

void console_put_i64(int64_t value) {
  if (value < 0) {
    console_putc('-');
    console_put_u64(-(uint64_t)value); /* well defined for INT64_MIN too */
  } else {
    console_put_u64((uint64_t)value);
  }
}

void console_put_hex(uint64_t value) {
  static const char hex[] = "0123456789abcdef";
  char digits[16];
  unsigned n = 0;
  do {
    digits[n++] = hex[value & 0xF];
    value >>= 4;
  } while (value != 0);
  console_puts("0x");
  while (n > 0)
    console_putc(digits[--n]);
}

void barrier_wait(struct barrier* b, uint32_t n) {
  uint32_t generation = atomic_load32(&b->generation);
  compiler_barrier();
  if (atomic_fetch_add32(&b->arrived, 1) == n - 1) {
    /* Last to arrive: reset the count before opening the next generation (TSO
     * keeps the two stores in order), so an early re-entry counts afresh. */
    atomic_store32(&b->arrived, 0);
    atomic_store32(&b->generation, generation + 1);
  } else {
    while (atomic_load32(&b->generation) == generation)
      cpu_relax();
  }
}

/* Plain byte loops: no rep-string instructions, and the build passes
 * -fno-tree-loop-distribute-patterns so gcc cannot turn them back into calls
 * to themselves. */
void* memset(void* dst, int c, size_t n) {
  unsigned char* d = dst;
  for (size_t i = 0; i < n; i++)
    d[i] = (unsigned char)c;
  return dst;
}

void* memcpy(void* dst, const void* src, size_t n) {
  unsigned char* d = dst;
  const unsigned char* s = src;
  for (size_t i = 0; i < n; i++)
    d[i] = s[i];
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  unsigned char* d = dst;
  const unsigned char* s = src;
  if (d < s) {
    for (size_t i = 0; i < n; i++)
      d[i] = s[i];
  } else {
    for (size_t i = n; i > 0; i--)
      d[i - 1] = s[i - 1];
  }
  return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* x = a;
  const unsigned char* y = b;
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
