#include "vmm/vm/vm.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "guestmm/snapshot.h"
#include "vmm/boot/boot_info.h"
#include "vmm/clock.h"
#include "vmm/vm/monitor.h"

namespace vmfork {

Result<std::unique_ptr<Vm>> Vm::create(Monitor& monitor, std::string name,
                                       std::unique_ptr<AddressSpace> space,
                                       const GuestLayout& layout,
                                       const std::vector<VcpuSnapshot>& vcpus,
                                       std::optional<uint64_t> fork_request_ns) {
  std::unique_ptr<Vm> vm(
      new Vm(monitor, std::move(name), std::move(space), layout, fork_request_ns));
  for (uint32_t i = 0; i < vcpus.size(); ++i) {
    Result<std::unique_ptr<SoftVcpu>> vcpu = SoftVcpu::create(*vm, i, vcpus[i]);
    if (!vcpu) return vcpu.error();
    if (!vcpus[i].halted) ++vm->running_;
    vm->vcpus_.push_back(std::move(*vcpu));
  }
  return vm;
}

Vm::Vm(Monitor& monitor, std::string name, std::unique_ptr<AddressSpace> space,
       const GuestLayout& layout, std::optional<uint64_t> fork_request_ns)
    : monitor_(monitor),
      name_(std::move(name)),
      space_(std::move(space)),
      layout_(layout),
      fork_request_ns_(fork_request_ns),
      console_(name_) {}

Vm::~Vm() {
  join();
  // vCPUs leave the address space's shootdown domain before it goes.
  vcpus_.clear();
}

void Vm::start() {
  bool any_running = false;
  {
    std::lock_guard lock(mutex_);
    any_running = running_ > 0;
    if (!any_running) status_ = 0;  // a clone of a VM whose vCPUs had all halted
  }
  if (!any_running) ending_.store(true, std::memory_order_release);
  for (const std::unique_ptr<SoftVcpu>& vcpu : vcpus_)
    vcpu->start();
}

void Vm::join() {
  for (const std::unique_ptr<SoftVcpu>& vcpu : vcpus_)
    vcpu->join();
  console_.flush();
}

int Vm::status() const {
  std::lock_guard lock(mutex_);
  return status_.value_or(kVmErrorStatus);
}

void Vm::end(int status) {
  std::lock_guard lock(mutex_);
  if (!status_) status_ = status;
  ending_.store(true, std::memory_order_release);
  changed_.notify_all();
}

Result<soft::PortAction> Vm::port_out(SoftVcpu& vcpu, uint16_t port, uint8_t size, uint32_t value) {
  if (port == port::kConsole && size == 1) {
    console_.put(static_cast<char>(value & 0xff));
    return soft::PortAction::kContinue;
  }
  if (port == port::kExit && size == 4) {
    end(static_cast<int>(value));
    return soft::PortAction::kStop;
  }
  return make_error(
      ErrorCode::kInvalidArgument,
      fmt::format("out of {} byte(s) to unknown port {:#x} by vCPU {}", size, port, vcpu.index()));
}

Result<uint32_t> Vm::port_in(SoftVcpu& vcpu, uint16_t port, uint8_t size) {
  return make_error(
      ErrorCode::kInvalidArgument,
      fmt::format("in of {} byte(s) from unknown port {:#x} by vCPU {}", size, port, vcpu.index()));
}

bool Vm::park_until_resumed(SoftVcpu& vcpu) {
  vcpu.memory().park();
  std::unique_lock lock(mutex_);
  ++parked_;
  changed_.notify_all();
  changed_.wait(lock, [this] {
    return !pause_requested_.load(std::memory_order_acquire) ||
           ending_.load(std::memory_order_acquire);
  });
  --parked_;
  if (ending_.load(std::memory_order_acquire)) return false;
  lock.unlock();
  vcpu.memory().resume();  // flushes what was requested while parked
  return true;
}

bool Vm::try_fork(SoftVcpu& forker, uint32_t clones) {
  const uint64_t requested_ns = now_ns();
  bool expected = false;
  if (!pause_requested_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    return false;
  }
  // The forker parks too: nobody needs its acknowledgements while the VM is
  // paused, and the snapshot then sees every vCPU stopped.
  forker.memory().park();
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] {
      return parked_ + 1 == running_ || ending_.load(std::memory_order_acquire);
    });
  }
  uint64_t rax = ~uint64_t{0};
  if (!ending()) rax = build_clones_while_paused(forker, clones, requested_ns);
  forker.state().reg(soft::Gpr::kRax) = rax;
  spdlog::debug("{}: fork of {} clone(s) from vCPU {} took {} us on the request path", name_,
                clones, forker.index(), (now_ns() - requested_ns) / 1000);
  {
    std::lock_guard lock(mutex_);
    pause_requested_.store(false, std::memory_order_release);
    changed_.notify_all();
  }
  forker.memory().resume();
  return true;
}

uint64_t Vm::build_clones_while_paused(SoftVcpu& forker, uint32_t clones, uint64_t requested_ns) {
  constexpr uint64_t kFailed = ~uint64_t{0};
  if (clones == 0) return 0;
  Result<std::unique_ptr<MemorySnapshot>> snapshot =
      space_->snapshot(fmt::format("{}.snapshot", name_));
  if (!snapshot) {
    spdlog::warn("{}: fork refused: {}", name_, snapshot.error().message);
    return kFailed;
  }
  std::vector<VcpuSnapshot> states;
  for (const std::unique_ptr<SoftVcpu>& vcpu : vcpus_)
    states.push_back(vcpu->snapshot());
  // The forker's request is the one being served: its copy stands after
  // the `out`, with RAX set per clone below.
  states[forker.index()].cpu = forker.state();

  // Every clone is built before any starts: on an error none does.
  std::vector<std::unique_ptr<Vm>> built;
  for (uint32_t k = 1; k <= clones; ++k) {
    Result<std::unique_ptr<AddressSpace>> space = (*snapshot)->spawn(next_clone_name());
    Result<void> tagged = space ? write_clone_id(**space, k) : Result<void>(space.error());
    if (!tagged) {
      spdlog::warn("{}: fork refused: {}", name_, tagged.error().message);
      return kFailed;
    }
    states[forker.index()].cpu.reg(soft::Gpr::kRax) = k;
    const std::string name = (*space)->name();
    Result<std::unique_ptr<Vm>> clone =
        Vm::create(monitor_, name, std::move(*space), layout_, states, requested_ns);
    if (!clone) {
      spdlog::warn("{}: fork refused: {}", name_, clone.error().message);
      return kFailed;
    }
    built.push_back(std::move(*clone));
  }
  for (std::unique_ptr<Vm>& clone : built)
    monitor_.launch(std::move(clone));
  return 0;
}

std::string Vm::next_clone_name() {
  return fmt::format("{}.{}", name_, ++clones_made_);
}

void Vm::vcpu_halted(SoftVcpu& /*vcpu*/) {
  std::lock_guard lock(mutex_);
  --running_;
  if (running_ == 0) {
    if (!status_) status_ = 0;  // every vCPU halted
    ending_.store(true, std::memory_order_release);
  }
  changed_.notify_all();
}

void Vm::vcpu_failed(SoftVcpu& vcpu, const std::string& cause) {
  // The interpreter's causes name the instruction and its RIP.
  monitor_.report_vm_error(fmt::format("{} vCPU {}: {}", name_, vcpu.index(), cause));
  end(kVmErrorStatus);
}

void Vm::vcpu_exited() {
  std::lock_guard lock(mutex_);
  --running_;
  changed_.notify_all();
}

void Vm::note_first_instruction() {
  if (!fork_request_ns_ || first_instruction_seen_.exchange(true)) return;
  monitor_.record_fork_latency(name_, now_ns() - *fork_request_ns_);
}

}  // namespace vmfork
