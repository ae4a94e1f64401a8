/* vmfork-linux-test: the Linux guest's own program (issue 14), run by the
 * initramfs's /init as `vmfork-linux-test MODE` with the MODE of
 * `vmfork.test=MODE` on the kernel command line.
 *
 * It reaches the guest ABI ports of DESIGN.md section 8 from user space:
 * iopl(3) as root lets `out` run in ring 3, where it traps to the VMM.
 *   out 32-bit to 0xF4    ends the VM with that exit status
 *   out 32-bit N to 0x510 forks N clones: RAX = 0 in the original, k in clone
 *                         k (1..N), -1 when the monitor refused
 *   out 32-bit to 0x511   snapshots: RAX = 0 in the running VM once written, k
 *                         in clone k restored from it, -1 when it failed
 *
 * Modes:
 *   boot      prints the CPUs online and the checksum of pattern 0 written
 *             over a 16 MiB buffer, and ends the VM with status 0.
 *   fork      the same, then forks 4 clones. Clone k says it runs, writes
 *             pattern k over the buffer and prints how long that took and
 *             the checksum; the original checks, for a few
 *             seconds while the clones write, that its buffer still holds
 *             pattern 0. Status 0; 1 if the original's memory changed; 2 if
 *             the fork was refused.
 *   snapshot  the same as boot, then snapshots. The running VM and every
 *             restored clone check that the buffer holds pattern 0. Status 0;
 *             1 if the memory changed; 2 if the snapshot failed.
 *   hostile  the same as boot, then forks 2 clones. Clone 2 writes pattern 2
 *             and prints its checksum, as in fork. Clone 1 misbehaves: it reads
 *             and writes ports no device answers (PCI configuration, COM2,
 *             0x1234) and prints what they read, then sets the kernel's
 *             reboot type to a triple fault (/sys/kernel/reboot/type) and
 *             reboots: its VM must end alone, with an error, while the
 *             original checks its memory as in fork.
 *   checksums prints the checksum of patterns 0..4 and touches no port: the
 *             tests run it on the host for the values the guest must print.
 *
 * Every line starts with "linux-guest:" and a clone's lines carry its k.
 * Before each out that ends the VM or copies it, stdout is flushed and
 * drained (tcdrain: the UART has sent every byte), so that no line is lost
 * at the end of a VM nor printed again by its clones.
 *
 * The modes that touch ports refuse to run unless the kernel command line
 * holds "vmfork.test=": as root on a host, iopl(3) would let them write to
 * the host's own I/O ports. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/reboot.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

enum {
  PORT_EXIT = 0xF4,
  PORT_FORK = 0x510,
  PORT_SNAPSHOT = 0x511,
};

enum {
  STATUS_OK = 0,
  STATUS_MEMORY_CHANGED = 1,
  STATUS_PORT_REFUSED = 2,
  /* Only when the out to PORT_EXIT returned: no VMM ends the VM. */
  STATUS_NOT_ENDED = 3,
  STATUS_USAGE = 64,
};

#define BUFFER_BYTES (16u << 20)
#define BUFFER_WORDS (BUFFER_BYTES / sizeof(uint64_t))
#define PATTERN_ORIGINAL 0u
#define CLONES 4u
#define HOSTILE_CLONES 2u
/* The original re-checks its buffer this many times, a second apart, so that
 * the clones have written theirs by the last check on any host but a very
 * slow one (where the test is weaker, never wrong). */
#define ORIGINAL_CHECKS 5u

/* Word i of pattern p: splitmix64's finalizer over (p, i), so that every
 * pattern differs from every other in every word. */
static uint64_t pattern_word(uint64_t pattern, uint64_t i) {
  uint64_t x = (pattern + 1u) * 0x9e3779b97f4a7c15u + i;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

static void fill(volatile uint64_t* buffer, uint64_t pattern) {
  for (uint64_t i = 0; i < BUFFER_WORDS; ++i)
    buffer[i] = pattern_word(pattern, i);
}

/* FNV-1a 64 over the buffer's 64-bit words (one step a word, not a byte:
 * under nested TCG a byte loop over 16 MiB takes seconds). volatile: each
 * check must read the memory again, not a value the compiler kept. */
static uint64_t checksum(const volatile uint64_t* buffer) {
  uint64_t hash = 0xcbf29ce484222325u;
  for (uint64_t i = 0; i < BUFFER_WORDS; ++i) {
    hash ^= buffer[i];
    hash *= 0x100000001b3u;
  }
  return hash;
}

static void flush_console(void) {
  fflush(stdout);
  fflush(stderr);
  /* Not a tty (output to a file or pipe): nothing waits in a UART. */
  (void)tcdrain(STDOUT_FILENO);
  (void)tcdrain(STDERR_FILENO);
}

/* out 32-bit VALUE to PORT; returns EAX after it, which the VMM may have set
 * (sign-extended: -1 may come back as 32 or 64 bits of ones). */
static int32_t port_out(uint16_t port, uint32_t value) {
  uint64_t rax = value;
  __asm__ volatile("outl %%eax, %%dx" : "+a"(rax) : "d"(port) : "memory");
  return (int32_t)(uint32_t)rax;
}

/* Ends the VM with STATUS. Returns only where nothing ends it (no VMM, or a
 * VMM without the exit port), with the status for the caller to exit with. */
static int end_vm(uint32_t status) {
  flush_console();
  port_out(PORT_EXIT, status);
  fprintf(stderr, "linux-guest: out %u to port 0x%x did not end the VM\n", status, PORT_EXIT);
  return STATUS_NOT_ENDED;
}

/* True when the kernel command line names a vmfork test: we are the guest. */
static int in_vmfork_guest(void) {
  FILE* cmdline = fopen("/proc/cmdline", "r");
  if (cmdline == NULL) return 0;
  char line[4096];
  const int found = fgets(line, sizeof line, cmdline) != NULL && strstr(line, "vmfork.test=");
  fclose(cmdline);
  return found;
}

static int enable_ports(void) {
  if (!in_vmfork_guest()) {
    fprintf(stderr,
            "linux-guest: no vmfork.test= on the kernel command line: not a vmfork guest, "
            "refusing to touch I/O ports\n");
    return -1;
  }
  if (iopl(3) != 0) {
    fprintf(stderr, "linux-guest: iopl(3) failed: %s (root and CONFIG_X86_IOPL_IOPERM needed)\n",
            strerror(errno));
    return -1;
  }
  return 0;
}

static uint64_t monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Clone K of a fork: writes pattern K over the buffer and prints its
 * checksum. It says first that it runs, and then how long the writes took
 * (every page a copy-on-write fault): a clone that is slow, on a loaded
 * nested host, is told apart from one that never ran. */
static int write_pattern_as_clone(volatile uint64_t* buffer, int32_t k) {
  printf("linux-guest: clone %" PRId32 " running\n", k);
  flush_console();
  const uint64_t start_ms = monotonic_ms();
  fill(buffer, (uint64_t)k);
  printf("linux-guest: clone %" PRId32 " wrote %u MiB in %" PRIu64 " ms\n", k, BUFFER_BYTES >> 20,
         monotonic_ms() - start_ms);
  printf("linux-guest: clone %" PRId32 " checksum 0x%016" PRIx64 "\n", k, checksum(buffer));
  return end_vm(STATUS_OK);
}

/* The original after a fork: its buffer must still hold ORIGINAL's pattern
 * while the clones write theirs. */
static int check_original(volatile uint64_t* buffer, uint64_t original) {
  for (unsigned check = 1; check <= ORIGINAL_CHECKS; ++check) {
    const uint64_t now = checksum(buffer);
    if (now != original) {
      printf("linux-guest: original memory changed after the fork: checksum 0x%016" PRIx64
             ", was 0x%016" PRIx64 " (check %u)\n",
             now, original, check);
      return end_vm(STATUS_MEMORY_CHANGED);
    }
    if (check < ORIGINAL_CHECKS) sleep(1);
  }
  printf("linux-guest: original untouched checksum 0x%016" PRIx64 "\n", original);
  return end_vm(STATUS_OK);
}

/* Forks CLONES clones, saying so with NOTE after the count: 0 in the
 * original, k in clone k, negative (said too) when the monitor refused. */
static int32_t fork_clones(unsigned clones, const char* note) {
  printf("linux-guest: forking %u clones%s\n", clones, note);
  flush_console();
  const int32_t k = port_out(PORT_FORK, clones);
  if (k < 0) printf("linux-guest: fork refused (%" PRId32 ")\n", k);
  return k;
}

static int run_fork(volatile uint64_t* buffer, uint64_t original) {
  const int32_t k = fork_clones(CLONES, "");
  if (k < 0) return end_vm(STATUS_PORT_REFUSED);
  if (k > 0) return write_pattern_as_clone(buffer, k);
  return check_original(buffer, original);
}

/* in from PORT, SIZE bytes (1, 2 or 4). */
static uint32_t port_in(uint16_t port, unsigned size) {
  uint32_t value = 0;
  if (size == 1) {
    uint8_t byte;
    __asm__ volatile("inb %%dx, %%al" : "=a"(byte) : "d"(port));
    value = byte;
  } else if (size == 2) {
    uint16_t word;
    __asm__ volatile("inw %%dx, %%ax" : "=a"(word) : "d"(port));
    value = word;
  } else {
    __asm__ volatile("inl %%dx, %%eax" : "=a"(value) : "d"(port));
  }
  return value;
}

/* Clone K of the hostile mode: ports nobody answers, then a triple fault. */
static int misbehave(int32_t k) {
  /* PCI configuration mechanism 1 (this machine has no PCI), COM2, and a
   * port of no device at all: each must read all ones. */
  port_out(0xCF8, 0x80000000u);
  const uint32_t pci = port_in(0xCFC, 4);
  const uint32_t com2 = port_in(0x2F8, 1);
  __asm__ volatile("outb %%al, %%dx" : : "a"((uint8_t)0x5a), "d"((uint16_t)0x1234));
  const uint32_t nothing = port_in(0x1234, 2);
  printf("linux-guest: hostile clone %" PRId32 " read pci 0x%08" PRIx32 " com2 0x%02" PRIx32
         " port 0x1234 0x%04" PRIx32 "\n",
         k, pci, com2, nothing);
  FILE* type = fopen("/sys/kernel/reboot/type", "w");
  if (type == NULL || fputs("triple", type) < 0 || fclose(type) != 0) {
    printf("linux-guest: hostile clone %" PRId32 ": cannot set the reboot type: %s\n", k,
           strerror(errno));
    return end_vm(STATUS_PORT_REFUSED);
  }
  printf("linux-guest: hostile clone %" PRId32 " triple-faulting\n", k);
  flush_console();
  sync();
  reboot(RB_AUTOBOOT);
  printf("linux-guest: hostile clone %" PRId32 ": reboot failed: %s\n", k, strerror(errno));
  return end_vm(STATUS_PORT_REFUSED);
}

static int run_hostile(volatile uint64_t* buffer, uint64_t original) {
  const int32_t k = fork_clones(HOSTILE_CLONES, ", clone 1 hostile");
  if (k < 0) return end_vm(STATUS_PORT_REFUSED);
  if (k == 1) return misbehave(k);
  if (k > 0) return write_pattern_as_clone(buffer, k);
  return check_original(buffer, original);
}

static int run_snapshot(volatile uint64_t* buffer, uint64_t original) {
  printf("linux-guest: taking a snapshot\n");
  flush_console();
  const int32_t k = port_out(PORT_SNAPSHOT, 0);
  if (k < 0) {
    printf("linux-guest: snapshot refused (%" PRId32 ")\n", k);
    return end_vm(STATUS_PORT_REFUSED);
  }
  const uint64_t now = checksum(buffer);
  if (now != original) {
    printf("linux-guest: %s %" PRId32 ": memory changed: checksum 0x%016" PRIx64
           ", was 0x%016" PRIx64 "\n",
           k == 0 ? "snapshot" : "restored clone", k, now, original);
    return end_vm(STATUS_MEMORY_CHANGED);
  }
  if (k == 0)
    printf("linux-guest: snapshot taken, checksum 0x%016" PRIx64 "\n", now);
  else
    printf("linux-guest: restored clone %" PRId32 " checksum 0x%016" PRIx64 "\n", k, now);
  return end_vm(STATUS_OK);
}

static int print_checksums(volatile uint64_t* buffer) {
  for (uint64_t pattern = PATTERN_ORIGINAL; pattern <= CLONES; ++pattern) {
    fill(buffer, pattern);
    printf("pattern %" PRIu64 " checksum 0x%016" PRIx64 "\n", pattern, checksum(buffer));
  }
  return STATUS_OK;
}

enum mode { MODE_BOOT, MODE_FORK, MODE_SNAPSHOT, MODE_HOSTILE, MODE_CHECKSUMS, MODE_UNKNOWN };

static enum mode parse_mode(const char* name) {
  static const char* const names[] = {"boot", "fork", "snapshot", "hostile", "checksums"};
  for (unsigned m = 0; m < sizeof names / sizeof names[0]; ++m) {
    if (strcmp(name, names[m]) == 0) return (enum mode)m;
  }
  return MODE_UNKNOWN;
}

int main(int argc, char** argv) {
  const char* name = argc == 2 ? argv[1] : "";
  const enum mode mode = parse_mode(name);
  if (mode == MODE_UNKNOWN) {
    fprintf(stderr, "usage: vmfork-linux-test boot|fork|snapshot|hostile|checksums (got '%s')\n",
            name);
    return STATUS_USAGE;
  }
  volatile uint64_t* buffer = malloc(BUFFER_BYTES);
  if (buffer == NULL) {
    fprintf(stderr, "linux-guest: cannot allocate %u bytes\n", BUFFER_BYTES);
    return STATUS_MEMORY_CHANGED;
  }
  if (mode == MODE_CHECKSUMS) return print_checksums(buffer);

  printf("linux-guest: booted, %ld cpus online\n", sysconf(_SC_NPROCESSORS_ONLN));
  fill(buffer, PATTERN_ORIGINAL);
  const uint64_t original = checksum(buffer);
  printf("linux-guest: checksum 0x%016" PRIx64 "\n", original);
  flush_console();
  if (enable_ports() != 0) return STATUS_PORT_REFUSED;
  switch (mode) {
    case MODE_FORK:
      return run_fork(buffer, original);
    case MODE_SNAPSHOT:
      return run_snapshot(buffer, original);
    case MODE_HOSTILE:
      return run_hostile(buffer, original);
    default:
      return end_vm(STATUS_OK);
  }
}
