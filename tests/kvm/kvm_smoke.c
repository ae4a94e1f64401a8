/* kvm_smoke: proves that /dev/kvm runs a guest, before any vmfork code is
 * blamed. One VM, one 64 KiB memslot at guest-physical 0, one vCPU in real
 * mode at 0x1000 running
 *
 *     mov al, 'K' ; mov dx, 0x3f8 ; out dx, al ; hlt
 *
 * It expects exactly two exits: KVM_EXIT_IO (out, port 0x3f8, one byte 'K'),
 * then KVM_EXIT_HLT. Prints "kvm smoke ok" and exits 0; otherwise prints what
 * went wrong on stderr and exits 1. Linked statically so that nested.sh needs
 * to bring nothing along. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
  kMemBytes = 0x10000,
  kCodeGpa = 0x1000,
  kSerialPort = 0x3f8,
};

static const uint8_t kCode[] = {
    0xb0, 'K',        /* mov al, 'K' */
    0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
    0xee,             /* out dx, al */
    0xf4,             /* hlt */
};

static void die(const char* what) {
  fprintf(stderr, "kvm_smoke: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char* what) {
  fprintf(stderr, "kvm_smoke: %s\n", what);
  exit(1);
}

static const char* exit_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_IO:
      return "KVM_EXIT_IO";
    case KVM_EXIT_HLT:
      return "KVM_EXIT_HLT";
    case KVM_EXIT_MMIO:
      return "KVM_EXIT_MMIO";
    case KVM_EXIT_SHUTDOWN:
      return "KVM_EXIT_SHUTDOWN (triple fault)";
    case KVM_EXIT_FAIL_ENTRY:
      return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM_EXIT_INTERNAL_ERROR";
    default:
      return "another exit";
  }
}

static void run_until_exit(int vcpu, struct kvm_run* run, uint32_t want) {
  if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
  if (run->exit_reason != want) {
    fprintf(stderr, "kvm_smoke: expected %s, got %s (exit reason %u)\n", exit_name(want),
            exit_name(run->exit_reason), run->exit_reason);
    exit(1);
  }
}

int main(void) {
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) fail("unexpected KVM API version");

  const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");

  uint8_t* mem = mmap(NULL, kMemBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap guest memory");
  memcpy(mem + kCodeGpa, kCode, sizeof kCode);
  struct kvm_userspace_memory_region region = {
      .slot = 0,
      .guest_phys_addr = 0,
      .memory_size = kMemBytes,
      .userspace_addr = (uint64_t)(uintptr_t)mem,
  };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

  const int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  const int run_bytes = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_bytes < (int)sizeof(struct kvm_run)) die("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run* run = mmap(NULL, (size_t)run_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  /* Real mode, CS base 0: RIP is the guest-physical address. */
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs;
  memset(&regs, 0, sizeof regs);
  regs.rip = kCodeGpa;
  regs.rflags = 0x2; /* bit 1 is reserved and must be set */
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  run_until_exit(vcpu, run, KVM_EXIT_IO);
  if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != kSerialPort || run->io.size != 1 ||
      run->io.count != 1) {
    fprintf(stderr, "kvm_smoke: unexpected I/O exit: direction %u port 0x%x size %u count %u\n",
            run->io.direction, run->io.port, run->io.size, run->io.count);
    return 1;
  }
  const uint8_t byte = *((const uint8_t*)run + run->io.data_offset);
  if (byte != 'K') {
    fprintf(stderr, "kvm_smoke: the guest wrote 0x%02x, expected 'K'\n", byte);
    return 1;
  }

  run_until_exit(vcpu, run, KVM_EXIT_HLT);
  printf("kvm smoke ok\n");
  return 0;
}
