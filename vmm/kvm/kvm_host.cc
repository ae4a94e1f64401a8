#include "vmm/kvm/kvm_host.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <thread>

#include "vmm/kvm/kvm_pc_state.h"
#include "vmm/kvm/pvm.h"

namespace vmfork::kvm {

namespace {

thread_local kvm_run* t_run = nullptr;

void on_kick(int /*signal*/) {
  // Async-signal-safe: one store. KVM_RUN then returns at once, or, if the
  // vCPU is in the guest, the pending signal makes it return EINTR.
  if (t_run != nullptr) {
    std::atomic_ref<uint8_t>(t_run->immediate_exit).store(1, std::memory_order_seq_cst);
  }
}

Result<void> install_kick_handler() {
  static std::once_flag once;
  static int saved_errno = 0;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = on_kick;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    if (sigaction(kKickSignal, &action, nullptr) != 0) saved_errno = errno;
  });
  if (saved_errno != 0) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("sigaction for the vCPU kick: {}", std::strerror(saved_errno)));
  }
  return Ok{};
}

// The kernel must write-protect shared memory (shmem) with userfaultfd, and
// deliver faults taken by KVM in kernel mode.
Result<void> check_userfaultfd() {
  const int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (uffd < 0) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("userfaultfd: {} (the kvm engine needs it for guest memory; "
                                  "run as root or set vm.unprivileged_userfaultfd=1)",
                                  std::strerror(errno)));
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
  const int rc = ioctl(uffd, UFFDIO_API, &api);
  const int saved = errno;
  close(uffd);
  if (rc != 0) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("userfaultfd cannot write-protect shared memory ({}): the kvm "
                                  "engine needs Linux 5.19 or later",
                                  std::strerror(saved)));
  }
  return Ok{};
}

}  // namespace

void set_thread_run_area(kvm_run* run) {
  t_run = run;
}

bool KvmHost::available() {
  const int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

Result<std::unique_ptr<KvmHost>> KvmHost::open() {
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm.valid()) return system_error("cannot open /dev/kvm");
  const int version = ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("/dev/kvm speaks KVM API {}, not {}", version, KVM_API_VERSION));
  }
  struct Needed {
    int cap;
    const char* name;
  };
  for (const Needed& needed : {Needed{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
                               Needed{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
                               Needed{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"}}) {
    if (ioctl(kvm.get(), KVM_CHECK_EXTENSION, needed.cap) <= 0) {
      return make_error(ErrorCode::kSystem,
                        fmt::format("/dev/kvm lacks {}, which the kvm engine needs", needed.name));
    }
  }
  const int mmap_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size <= 0) return system_error("KVM_GET_VCPU_MMAP_SIZE");

  const bool tsc_deadline_timer = ioctl(kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
  auto cpuid = std::make_unique<CpuidList<kMaxCpuidEntries>>();
  if (ioctl(kvm.get(), kGetSupportedCpuid, cpuid.get()) != 0) {
    return system_error("KVM_GET_SUPPORTED_CPUID");
  }
  Result<std::vector<uint32_t>> msrs = msr_index_list(kvm.get());
  if (!msrs) return msrs.error();
  if (Result<void> uffd = check_userfaultfd(); !uffd) return uffd.error();
  if (Result<void> kick = install_kick_handler(); !kick) return kick.error();
  return std::unique_ptr<KvmHost>(new KvmHost(std::move(kvm), static_cast<size_t>(mmap_size),
                                              std::move(cpuid), std::move(*msrs), pvm_host(),
                                              tsc_deadline_timer));
}

bool KvmHost::amd() const {
  for (uint32_t i = 0; i < cpuid_->nent; ++i) {
    const kvm_cpuid_entry2& leaf = cpuid_->entries[i];
    if (leaf.function != 0) continue;
    // "AuthenticAMD" in EBX, EDX, ECX.
    return leaf.ebx == 0x68747541 && leaf.edx == 0x69746e65 && leaf.ecx == 0x444d4163;
  }
  return false;
}

KvmHost::KvmHost(UniqueFd kvm, size_t vcpu_mmap_size,
                 std::unique_ptr<CpuidList<kMaxCpuidEntries>> cpuid,
                 std::vector<uint32_t> msr_indices, bool pvm, bool tsc_deadline_timer)
    : kvm_(std::move(kvm)),
      vcpu_mmap_size_(vcpu_mmap_size),
      cpuid_(std::move(cpuid)),
      msr_indices_(std::move(msr_indices)),
      pvm_(pvm),
      tsc_deadline_timer_(tsc_deadline_timer),
      halt_watch_(pvm ? std::make_unique<HaltWatch>() : nullptr),
      faults_(std::clamp(std::thread::hardware_concurrency(), 1u, 4u)) {}

}  // namespace vmfork::kvm
