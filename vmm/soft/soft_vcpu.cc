#include "vmm/soft/soft_vcpu.h"

#include "vmm/soft/soft_cpu_state.h"

namespace vmfork {

namespace {
// Instructions per run() call: a run also ends at every pause request, so
// this only bounds how long a vCPU goes without returning to its loop.
constexpr uint64_t kRunBudget = uint64_t{1} << 22;
}  // namespace

Result<std::unique_ptr<SoftVcpu>> SoftVcpu::create(VmHost& vm, uint32_t index,
                                                   const VcpuSnapshot& from) {
  Result<std::unique_ptr<VcpuMemory>> memory = VcpuMemory::create(vm.space(), VcpuStart::kParked);
  if (!memory) return memory.error();
  return std::unique_ptr<SoftVcpu>(new SoftVcpu(vm, index, std::move(*memory), from));
}

SoftVcpu::SoftVcpu(VmHost& vm, uint32_t index, std::unique_ptr<VcpuMemory> memory,
                   const VcpuSnapshot& from)
    : vm_(vm),
      index_(index),
      memory_(std::move(memory)),
      outside_interpreter_(from.cpu),
      state_(soft::to_soft(from.cpu)),
      halted_(from.halted) {}

SoftVcpu::~SoftVcpu() {
  join();
}

void SoftVcpu::start() {
  if (!halted_) thread_ = ParkedThreads::process().run([this] { run(); });
}

void SoftVcpu::join() {
  if (thread_.joinable()) thread_.join();
}

Result<std::byte*> SoftVcpu::translate(uint64_t gpa, Access access) {
  return memory_->translate(Gpa(gpa), access);
}

Result<soft::PortAction> SoftVcpu::port_out(uint16_t port, uint8_t size, uint32_t value) {
  Result<PortAction> action = vm_.port_out(*this, port, size, value);
  if (!action) return action.error();
  switch (*action) {
    case PortAction::kContinue:
      return soft::PortAction::kContinue;
    case PortAction::kStop:
      return soft::PortAction::kStop;
    case PortAction::kFork:
      // The fork happens at the next instruction boundary, in run(). During
      // the `out`, the state's RIP is still the instruction's own.
      fork_request_ = value;
      fork_rip_ = state_.rip;
      return soft::PortAction::kStop;
  }
  return soft::PortAction::kStop;
}

VcpuSnapshot SoftVcpu::snapshot_of(const soft::CpuState& cpu) const {
  VcpuSnapshot snapshot{outside_interpreter_, halted_};
  soft::from_soft(cpu, snapshot.cpu);
  return snapshot;
}

Result<VcpuSnapshot> SoftVcpu::snapshot() const {
  soft::CpuState copy = state_;
  if (fork_request_) copy.rip = fork_rip_;
  return snapshot_of(copy);
}

Result<VcpuSnapshot> SoftVcpu::snapshot_past_fork() {
  return snapshot_of(state_);
}

Result<void> SoftVcpu::set_fork_result(uint64_t rax) {
  state_.reg(soft::Gpr::kRax) = rax;
  return Ok{};
}

Result<uint32_t> SoftVcpu::port_in(uint16_t port, uint8_t size) {
  return vm_.port_in(*this, port, size);
}

bool SoftVcpu::check() {
  memory_->check();
  if (!vm_.must_stop(this)) return false;  // not for a pause handed to us
  if (resumed_ && !vm_.ending()) {
    // The first stop after a resume waits a basic block: the vCPU runs at
    // least one between two parkings.
    resumed_ = false;
    return false;
  }
  return true;
}

soft::Exclusive SoftVcpu::begin_exclusive() {
  // Refused: the interpreter stops before the instruction and run() parks
  // behind the other pauser (or ends), then runs the instruction again.
  return vm_.begin_exclusive(*this) ? soft::Exclusive::kGranted : soft::Exclusive::kRetry;
}

void SoftVcpu::end_exclusive() {
  vm_.end_exclusive();
}

void SoftVcpu::run() {
  // Waits for the VM to start, still parked (in nobody's way); a VM
  // abandoned before it started ends here, before any guest instruction.
  vm_.note_first_instruction();
  if (!vm_.ending()) memory_->resume();
  for (;;) {
    if (vm_.ending()) break;
    if (fork_request_) {
      if (!vm_.serve_fork_request(*this, fork_request_)) break;
      continue;
    }
    const soft::RunExit exit = interpreter_.run(state_, *this, kRunBudget);
    if (soft::is_error(exit.reason)) {
      vm_.vcpu_failed(*this, exit.message);
      break;
    }
    if (exit.reason == soft::ExitReason::kHalted) {
      // hlt stops the vCPU for good.
      memory_->park();
      halted_ = true;
      vm_.vcpu_halted(*this);
      return;
    }
    if (vm_.ending()) break;
    if (!fork_request_ && vm_.must_stop(this)) {
      if (!vm_.park_until_resumed(*this)) break;
      resumed_ = true;
    }
  }
  // Stopped for good: initiators stop waiting for this vCPU.
  memory_->park();
  vm_.vcpu_exited();
}

}  // namespace vmfork
