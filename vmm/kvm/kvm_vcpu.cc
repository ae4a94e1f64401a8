#include "vmm/kvm/kvm_vcpu.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <thread>

#include "vmm/boot/exception_handlers.h"
#include "vmm/kvm/kvm_cpu_state.h"

namespace vmfork {

namespace {

// KVM_RUN fails with EFAULT while a run of shared pages is being realized
// read-only (kvm/guest_ram.cc): the write is retried. A fault that lasts
// this many retries is real.
constexpr int kEfaultRetries = 100000;
// Some kernels (PVM's on 6.18) try to emulate an instruction that writes a
// run being realized read-only, and report an emulation failure when they
// cannot; the instruction has not run, so it is retried once the
// realization has finished. One that keeps failing after that is real.
constexpr int kEmulationRetries = 1000;

void set_immediate_exit(kvm_run* run, uint8_t value) {
  std::atomic_ref<uint8_t>(run->immediate_exit).store(value, std::memory_order_seq_cst);
}

const char* exit_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_SHUTDOWN:
      return "triple fault (an exception with no IDT to deliver it through, e.g. ud2 or a page "
             "fault; the CPU state, RIP included, is lost)";
    case KVM_EXIT_FAIL_ENTRY:
      return "VM entry failed";
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM internal error (an instruction KVM could not emulate)";
    default:
      return "unexpected KVM exit";
  }
}

}  // namespace

Result<std::unique_ptr<KvmVcpu>> KvmVcpu::create(VmHost& vm, kvm::KvmMachine& machine,
                                                 KvmVcpuDirectory& directory, uint32_t index,
                                                 const VcpuSnapshot& from) {
  Result<kvm::KvmVcpuFd> fd = machine.create_vcpu(index, kvm::from_neutral(from.cpu));
  if (!fd) return fd.error();
  kvm::HaltWatch* watch = machine.halt_watch();
  std::optional<kvm::VcpuStat> emulations;
  if (watch != nullptr) {
    Result<kvm::VcpuStat> stat = kvm::VcpuStat::open(fd->fd(), "insn_emulation");
    if (!stat) {
      return make_error(ErrorCode::kSystem,
                        fmt::format("vCPU {}: PVM's hlt cannot be seen without the vCPU's "
                                    "insn_emulation statistic: {}",
                                    index, stat.error().message));
    }
    emulations = std::move(*stat);
  }
  return std::unique_ptr<KvmVcpu>(new KvmVcpu(vm, machine, directory, index, std::move(*fd),
                                              from.halted, watch, std::move(emulations)));
}

KvmVcpu::KvmVcpu(VmHost& vm, kvm::KvmMachine& machine, KvmVcpuDirectory& directory, uint32_t index,
                 kvm::KvmVcpuFd fd, bool halted, kvm::HaltWatch* halt_watch,
                 std::optional<kvm::VcpuStat> emulations)
    : vm_(vm),
      machine_(machine),
      ram_(machine.ram()),
      directory_(directory),
      index_(index),
      fd_(std::move(fd)),
      halted_(halted),
      halt_watch_(halt_watch),
      emulations_(std::move(emulations)) {
  directory_.add(this);
}

KvmVcpu::~KvmVcpu() {
  join();
  directory_.remove(this);
}

void KvmVcpu::start() {
  if (!halted_) thread_ = ParkedThreads::process().run([this] { run(); });
}

void KvmVcpu::join() {
  if (thread_.joinable()) thread_.join();
}

void KvmVcpu::kick() {
  // The handler sets immediate_exit on this thread: KVM_RUN returns at once
  // if it has not started, with EINTR if it has. A thread that has left its
  // loop is not signalled (it may be joined and gone).
  std::lock_guard lock(kick_mutex_);
  if (running_thread_) pthread_kill(*running_thread_, kvm::kKickSignal);
}

void KvmVcpu::fail_memory(const std::string& cause) {
  {
    std::lock_guard lock(fault_mutex_);
    if (!memory_fault_) memory_fault_ = cause;
  }
  kick();
}

Result<VcpuSnapshot> KvmVcpu::state_as_is() const {
  Result<kvm::KvmCpuState> state = fd_.get_state();
  if (!state) return state.error();
  if (machine_.platform() == Platform::kPc) {
    Result<kvm::PcCpuState> pc = machine_.pc_cpu_state(fd_);
    if (!pc) return pc.error();
    state->pc = std::move(*pc);
  }
  return VcpuSnapshot{kvm::to_neutral(*state), halted_};
}

Result<VcpuSnapshot> KvmVcpu::snapshot() const {
  Result<VcpuSnapshot> snapshot = state_as_is();
  // An unserved fork request of ours: the copy stands at its `out` again,
  // so it asks again in the clone.
  if (snapshot && fork_request_) snapshot->cpu.regs.rip = fork_out_rip_;
  return snapshot;
}

Result<VcpuSnapshot> KvmVcpu::snapshot_past_fork() {
  complete_pending_io();
  return state_as_is();
}

Result<void> KvmVcpu::set_fork_result(uint64_t rax) {
  complete_pending_io();
  kvm_regs regs{};
  if (ioctl(fd_.fd(), KVM_GET_REGS, &regs) == 0) {
    regs.rax = rax;
    if (ioctl(fd_.fd(), KVM_SET_REGS, &regs) == 0) return Ok{};
  }
  return make_error(ErrorCode::kSystem,
                    fmt::format("setting the fork's result in RAX: {}", std::strerror(errno)));
}

void KvmVcpu::parking() {
  // A copy must not run a port write (or a RAM access KVM handed over as
  // MMIO) again: finish it first. (A fork request's `out` is retired
  // already; snapshot() puts a copy back at it.)
  complete_pending_io();
}

Result<uint64_t> KvmVcpu::retire_fork_out() {
  const uint64_t at_exit = rip();
  complete_pending_io();
  const uint64_t after = rip();
  if (after != at_exit) return at_exit;
  // The kernel had retired it before the exit: the `out dx, eax` (0xEF)
  // ends at RIP.
  uint8_t opcode = 0;
  if (after > 0 &&
      vm_.space().read(Gpa(after - 1), std::as_writable_bytes(std::span(&opcode, 1))) &&
      opcode == 0xEF) {
    return after - 1;
  }
  return make_error(
      ErrorCode::kInternal,
      fmt::format("a fork request whose `out dx, eax` does not end at RIP {:#x}", after));
}

void KvmVcpu::complete_pending_io() {
  if (!io_pending_) return;
  set_immediate_exit(fd_.run(), 1);
  // Returns EINTR once KVM has completed the I/O (it skips the instruction).
  // An access KVM split into pieces (across a page, or wider than 8 bytes)
  // hands over its next piece instead, and KVM_RUN returns 0: each piece is
  // completed in turn.
  while (ioctl(fd_.fd(), KVM_RUN, 0) == 0 && fd_.run()->exit_reason == KVM_EXIT_MMIO) {
    if (!handle_mmio()) break;
  }
  io_pending_ = false;
}

std::string KvmVcpu::describe_exception() const {
  kvm_regs regs{};
  kvm_sregs sregs{};
  ExceptionFrame frame{};
  if (ioctl(fd_.fd(), KVM_GET_REGS, &regs) != 0 || ioctl(fd_.fd(), KVM_GET_SREGS, &sregs) != 0 ||
      !vm_.space().read(Gpa(regs.rsp), std::as_writable_bytes(std::span(&frame, 1)))) {
    return "an exception the monitor could not read the frame of";
  }
  const std::string name = exception_name(frame.vector);
  if (frame.vector == 6)
    return fmt::format("unsupported instruction ({}) at RIP {:#x}", name, frame.rip);
  if (frame.vector == 14) {
    const bool outside = sregs.cr2 >= vm_.space().ram_bytes();
    return fmt::format("memory fault at RIP {:#x}: {} at {:#x}{}", frame.rip, name, sregs.cr2,
                       outside ? ", outside RAM" : "");
  }
  return fmt::format("{} at RIP {:#x} (error code {:#x})", name, frame.rip, frame.error_code);
}

uint64_t KvmVcpu::rip() const {
  kvm_regs regs{};
  if (ioctl(fd_.fd(), KVM_GET_REGS, &regs) != 0) return 0;
  return regs.rip;
}

void KvmVcpu::fail(const std::string& cause) {
  vm_.vcpu_failed(*this, cause);
}

void KvmVcpu::run() {
  thread_id_.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_release);
  kvm::set_thread_run_area(fd_.run());
  // The pool's threads block every signal; the kick must come through.
  sigset_t kick_signal;
  sigemptyset(&kick_signal);
  sigaddset(&kick_signal, kvm::kKickSignal);
  pthread_sigmask(SIG_UNBLOCK, &kick_signal, nullptr);
  {
    std::lock_guard lock(kick_mutex_);
    running_thread_ = pthread_self();
  }
  std::unique_ptr<kvm::HaltWatch::Registration> watched;
  if (halt_watch_ != nullptr) {
    watched = halt_watch_->watch(*emulations_, exits_, [this] {
      halt_seen_.store(true, std::memory_order_release);
      kick();
    });
  }
  run_loop();
  watched.reset();  // no kick after this
  {
    std::lock_guard lock(kick_mutex_);
    running_thread_.reset();
  }
  kvm::set_thread_run_area(nullptr);
}

void KvmVcpu::run_loop() {
  vm_.note_first_instruction();
  for (;;) {
    if (fork_request_) {
      if (!vm_.serve_fork_request(*this, fork_request_)) break;
      continue;
    }
    // Clear a stale kick before looking at the flags: a kick after this
    // store sets it again, and KVM_RUN then returns at once.
    set_immediate_exit(fd_.run(), 0);
    if (vm_.ending()) break;
    if (vm_.must_stop()) {
      if (!vm_.park_until_resumed(*this)) break;
      continue;
    }
    if (!run_once()) break;
    if (halted_) {
      vm_.vcpu_halted(*this);
      return;
    }
  }
  vm_.vcpu_exited();
}

bool KvmVcpu::run_once() {
  kvm_run* run = fd_.run();
  int efaults = 0;
  for (;;) {
    const int rc = ioctl(fd_.fd(), KVM_RUN, 0);
    if (rc == 0) break;
    if (errno == EINTR || errno == EAGAIN) {
      exits_.fetch_add(1, std::memory_order_release);
      // PVM: a hlt KVM_RUN did not report stops the vCPU where the halt
      // watch's kick found it (kvm/halt_watch.h).
      if (halt_seen_.exchange(false, std::memory_order_acq_rel) && stopped_at_hlt()) {
        halted_ = true;
        return true;
      }
      std::optional<std::string> fault;
      {
        std::lock_guard lock(fault_mutex_);
        fault = memory_fault_;
      }
      if (fault) {
        fail(fmt::format("memory fault at RIP {:#x}: {}", rip(), *fault));
        return false;
      }
      return true;  // kicked: the loop looks at the VM's flags
    }
    if (errno == EFAULT && ++efaults < kEfaultRetries) {
      if (efaults % 64 == 0) std::this_thread::yield();
      continue;
    }
    fail(fmt::format("KVM_RUN failed at RIP {:#x}: {}", rip(), std::strerror(errno)));
    return false;
  }
  exits_.fetch_add(1, std::memory_order_release);
  if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR) emulation_failures_ = 0;
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      io_pending_ = true;
      return handle_io();
    case KVM_EXIT_HLT:
      halted_ = true;  // hlt stops the vCPU for good
      return true;
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_MMIO:
      return handle_mmio();
    case KVM_EXIT_FAIL_ENTRY:
      fail(fmt::format("{} (hardware reason {:#x})", exit_name(run->exit_reason),
                       run->fail_entry.hardware_entry_failure_reason));
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
          ++emulation_failures_ < kEmulationRetries) {
        // The realization that made the page read-only holds this until
        // the page is writable.
        { std::lock_guard realized(ram_.serve_mutex()); }
        return true;
      }
      fail(fmt::format("{} at RIP {:#x} (suberror {})", exit_name(run->exit_reason), rip(),
                       run->internal.suberror));
      return false;
    case KVM_EXIT_SHUTDOWN:
      fail(vm_.platform() == Platform::kPc
               ? fmt::format("triple fault (an exception the guest could not deliver) near RIP "
                             "{:#x}",
                             rip())
               : exit_name(run->exit_reason));
      return false;
    default:
      fail(fmt::format("{} {} at RIP {:#x}", exit_name(run->exit_reason), run->exit_reason, rip()));
      return false;
  }
}

bool KvmVcpu::stopped_at_hlt() {
  constexpr uint8_t kHlt = 0xF4;
  kvm_regs regs{};
  if (ioctl(fd_.fd(), KVM_GET_REGS, &regs) != 0) return false;
  // The byte at a guest-virtual address, through the guest's page tables.
  auto byte_at = [this](uint64_t linear) -> std::optional<uint8_t> {
    kvm_translation translation{};
    translation.linear_address = linear;
    if (ioctl(fd_.fd(), KVM_TRANSLATE, &translation) != 0 || !translation.valid) {
      return std::nullopt;
    }
    uint8_t byte = 0;
    if (!vm_.space().read(Gpa(translation.physical_address),
                          std::as_writable_bytes(std::span(&byte, 1)))) {
      return std::nullopt;
    }
    return byte;
  };
  if (byte_at(regs.rip) == kHlt) {
    // About to run it (again, in a `hlt; jmp` loop): it stops past it, as
    // a hlt leaves RIP.
    regs.rip += 1;
    return ioctl(fd_.fd(), KVM_SET_REGS, &regs) == 0;
  }
  return regs.rip > 0 && byte_at(regs.rip - 1) == kHlt;
}

bool KvmVcpu::handle_mmio() {
  kvm_run* run = fd_.run();
  const uint64_t gpa = run->mmio.phys_addr;
  const uint32_t len = run->mmio.len;
  const char* what = run->mmio.is_write ? "write" : "read";
  if (gpa >= ram_.ram_bytes() || len == 0 || len > sizeof(run->mmio.data)) {
    fail(
        fmt::format("memory fault at RIP {:#x}: {} of {} byte(s) at guest-physical {:#x}, "
                    "outside RAM",
                    rip(), what, len, gpa));
    return false;
  }
  if (Result<void> done =
          ram_.complete_mmio(gpa, std::span(run->mmio.data, len), run->mmio.is_write != 0);
      !done) {
    fail(fmt::format("memory fault at RIP {:#x}: {} (a {} of {} byte(s) at guest-physical {:#x})",
                     rip(), done.error().message, what, len, gpa));
    return false;
  }
  // Like port I/O, KVM finishes the instruction on the next KVM_RUN: a
  // pause completes it before the state is copied.
  io_pending_ = true;
  return true;
}

bool KvmVcpu::handle_io() {
  kvm_run* run = fd_.run();
  auto* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const uint16_t port = run->io.port;
  const uint8_t size = run->io.size;
  for (uint32_t i = 0; i < run->io.count; ++i, data += size) {
    if (run->io.direction == KVM_EXIT_IO_OUT) {
      uint32_t value = 0;
      std::memcpy(&value, data, size);
      // The monitor's exception reporters are a freestanding guest's only.
      if (port == kExceptionPort && size == 4 && vm_.platform() == Platform::kFreestanding) {
        fail(describe_exception());
        return false;
      }
      Result<PortAction> done = vm_.port_out(*this, port, size, value);
      if (!done) {
        fail(fmt::format("{} at RIP {:#x}", done.error().message, rip()));
        return false;
      }
      if (*done == PortAction::kFork) {
        // Served at the boundary after the `out`, in run(). The `out` is
        // retired now: after the exit, RIP is the instruction's where KVM
        // ran it natively but already past it where KVM emulated it (PVM
        // does, now and then), and retiring it makes the two agree.
        Result<uint64_t> out = retire_fork_out();
        if (!out) {
          fail(out.error().message);
          return false;
        }
        fork_out_rip_ = *out;
        fork_request_ = value;
        return true;
      }
      if (*done == PortAction::kStop) return true;  // the VM ends
    } else {
      Result<uint32_t> value = vm_.port_in(*this, port, size);
      if (!value) {
        fail(fmt::format("{} at RIP {:#x}", value.error().message, rip()));
        return false;
      }
      std::memcpy(data, &*value, size);
    }
  }
  return true;
}

}  // namespace vmfork
