// A fake engine behind the engine interface (vmm/hypervisor), for the VM's
// own tests: each vCPU is a thread that runs a tiny program of steps (port
// writes, halt, failure, spinning, an exclusive section) and follows the VM's
// pause exactly as the real engines do. The program counter is the vCPU's
// RIP, so a snapshot of it, and a clone made from that, go on where it
// stood; a clone tells itself apart by RAX, as a guest does after a fork.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vmm/hypervisor/hypervisor.h"
#include "vmm/vm/ports.h"

namespace vmfork::testing {

struct Step {
  enum class Kind : uint8_t {
    kOut,          // out `value` of `size` bytes to `port`
    kOutRax,       // out RAX to `port` (4 bytes): the exit port, for a status per clone
    kHalt,         // hlt
    kFail,         // an error of the engine (an unsupported instruction, say)
    kFailIfRax,    // kFail when RAX is `value`, else nothing
    kSpin,         // runs on the spot until the VM pauses or ends
    kExclusive,    // an exclusive section; counts the vCPUs it found parked
    kSpinUntilGo,  // spins until FakeHypervisor::go is set
    kGo,           // sets FakeHypervisor::go
  };
  Kind kind = Kind::kHalt;
  uint16_t port = 0;
  uint8_t size = 0;
  uint32_t value = 0;
};

inline Step out(uint16_t port, uint8_t size, uint32_t value) {
  return {Step::Kind::kOut, port, size, value};
}
inline Step exit_with(uint32_t status) {
  return out(port::kExit, 4, status);
}
inline Step fork(uint32_t clones) {
  return out(port::kFork, 4, clones);
}
inline Step exit_with_rax() {
  return {Step::Kind::kOutRax, port::kExit, 4, 0};
}
inline Step halt() {
  return {Step::Kind::kHalt};
}
inline Step fail() {
  return {Step::Kind::kFail};
}
inline Step fail_if_rax(uint32_t rax) {
  return {Step::Kind::kFailIfRax, 0, 0, rax};
}
inline Step spin() {
  return {Step::Kind::kSpin};
}
inline Step spin_until_go() {
  return {Step::Kind::kSpinUntilGo};
}
inline Step go() {
  return {Step::Kind::kGo};
}
inline Step exclusive() {
  return {Step::Kind::kExclusive};
}

class FakeHypervisor;

class FakeVcpu final : public Vcpu {
 public:
  FakeVcpu(FakeHypervisor& engine, VmHost& vm, uint32_t index, const VcpuSnapshot& from)
      : engine_(engine), vm_(vm), index_(index), cpu_(from.cpu), halted_(from.halted) {}
  ~FakeVcpu() override { join(); }

  uint32_t index() const override { return index_; }
  void start() override {
    if (!halted_) thread_ = std::thread([this] { run(); });
  }
  void join() override {
    if (thread_.joinable()) thread_.join();
  }
  void kick() override {}  // the loop looks at the flags every step
  Result<VcpuSnapshot> snapshot() const override {
    VcpuSnapshot copy{cpu_, halted_};
    if (fork_request_) copy.cpu.regs.rip -= 1;  // at its `out` again
    return copy;
  }
  Result<VcpuSnapshot> snapshot_past_fork() override { return VcpuSnapshot{cpu_, halted_}; }
  Result<void> set_fork_result(uint64_t rax) override {
    cpu_.regs.rax() = rax;
    return Ok{};
  }
  void parking() override;
  void resuming() override;

 private:
  void run();
  // Runs the step at RIP; false when the thread must leave its loop.
  bool step();

  FakeHypervisor& engine_;
  VmHost& vm_;
  const uint32_t index_;
  CpuState cpu_;  // regs.rip: the index of the next step
  bool halted_;
  std::optional<uint32_t> fork_request_;
  std::thread thread_;
};

class FakeMachine final : public Machine {
 public:
  FakeMachine(FakeHypervisor& engine, VmHost& vm) : engine_(engine), vm_(vm) {}
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index, const VcpuSnapshot& from) override;
  std::unique_lock<std::mutex> hold_faults() override { return std::unique_lock(faults_); }
  Result<void> restart_memory_locked() override;
  void log_counters(const std::string& /*vm_name*/) const override {}

 private:
  FakeHypervisor& engine_;
  VmHost& vm_;
  std::mutex faults_;
};

class FakeHypervisor final : public Hypervisor {
 public:
  // vCPU i of every VM runs programs[i].
  explicit FakeHypervisor(std::vector<std::vector<Step>> programs)
      : programs_(std::move(programs)) {}

  Engine engine() const override { return Engine::kSoft; }
  CpuState start_state(const VcpuBootState& boot) const override {
    CpuState state = cpu_state_from_boot(boot);
    state.regs.rip = 0;  // the first step
    return state;
  }
  Result<std::unique_ptr<Machine>> create_machine(VmHost& vm, uint32_t /*vcpu_count*/) override {
    machines.fetch_add(1);
    return std::unique_ptr<Machine>(std::make_unique<FakeMachine>(*this, vm));
  }

  const std::vector<Step>& program(uint32_t vcpu) const { return programs_.at(vcpu); }

  // What the engine saw, for the tests to check.
  std::atomic<int> machines{0};
  std::atomic<int> vcpus{0};
  std::atomic<int> restarts{0};
  std::atomic<int> parked{0};                // vCPUs parked now
  std::atomic<int> parked_in_exclusive{-1};  // of those, while an exclusive section ran
  std::atomic<bool> go{false};
  std::atomic<bool> refuse_vcpus{false};
  std::atomic<bool> refuse_restart{false};
  std::mutex started_mutex;
  std::vector<CpuState> started;  // guarded by started_mutex: every vCPU's start state

 private:
  const std::vector<std::vector<Step>> programs_;
};

// An OpenHypervisor that hands out `engine` for every Engine; the test keeps
// it alive until the monitor is gone.
class SharedFake final : public Hypervisor {
 public:
  explicit SharedFake(FakeHypervisor& engine) : engine_(engine) {}
  Engine engine() const override { return engine_.engine(); }
  CpuState start_state(const VcpuBootState& boot) const override {
    return engine_.start_state(boot);
  }
  Result<std::unique_ptr<Machine>> create_machine(VmHost& vm, uint32_t count) override {
    return engine_.create_machine(vm, count);
  }

 private:
  FakeHypervisor& engine_;
};

inline OpenHypervisor open_fake(FakeHypervisor& engine) {
  return [&engine](Engine) -> Result<std::unique_ptr<Hypervisor>> {
    return std::unique_ptr<Hypervisor>(std::make_unique<SharedFake>(engine));
  };
}

inline Result<std::unique_ptr<Vcpu>> FakeMachine::create_vcpu(uint32_t index,
                                                              const VcpuSnapshot& from) {
  if (engine_.refuse_vcpus.load()) {
    return make_error(ErrorCode::kSystem, "the fake engine refuses vCPUs");
  }
  engine_.vcpus.fetch_add(1);
  {
    std::lock_guard lock(engine_.started_mutex);
    engine_.started.push_back(from.cpu);
  }
  return std::unique_ptr<Vcpu>(std::make_unique<FakeVcpu>(engine_, vm_, index, from));
}

inline Result<void> FakeMachine::restart_memory_locked() {
  engine_.restarts.fetch_add(1);
  if (engine_.refuse_restart.load()) {
    return make_error(ErrorCode::kSystem, "the fake engine cannot restart memory");
  }
  return Ok{};
}

inline void FakeVcpu::parking() {
  engine_.parked.fetch_add(1);
}

inline void FakeVcpu::resuming() {
  engine_.parked.fetch_sub(1);
}

inline void FakeVcpu::run() {
  // The loop of the real engines (vmm/soft/soft_vcpu.cc), one step at a time.
  vm_.note_first_instruction();
  for (;;) {
    if (vm_.ending()) break;
    if (fork_request_) {
      if (!vm_.serve_fork_request(*this, fork_request_)) break;
      continue;
    }
    if (vm_.must_stop(this)) {
      if (!vm_.park_until_resumed(*this)) break;
      continue;
    }
    if (!step()) break;
    if (halted_) {
      vm_.vcpu_halted(*this);  // hlt stops the vCPU for good
      return;
    }
  }
  vm_.vcpu_exited();
}

inline bool FakeVcpu::step() {
  const std::vector<Step>& program = engine_.program(index_);
  if (cpu_.regs.rip >= program.size()) {
    vm_.vcpu_failed(*this, "ran past the end of its program");
    return false;
  }
  const Step& s = program[cpu_.regs.rip];
  switch (s.kind) {
    case Step::Kind::kOut:
    case Step::Kind::kOutRax: {
      const uint32_t value =
          s.kind == Step::Kind::kOut ? s.value : static_cast<uint32_t>(cpu_.regs.rax());
      Result<PortAction> action = vm_.port_out(*this, s.port, s.size, value);
      if (!action) {
        vm_.vcpu_failed(*this, action.error().message);
        return false;
      }
      ++cpu_.regs.rip;
      if (*action == PortAction::kFork) fork_request_ = value;
      return true;
    }
    case Step::Kind::kHalt:
      ++cpu_.regs.rip;
      halted_ = true;
      return true;
    case Step::Kind::kFailIfRax:
      if (cpu_.regs.rax() != s.value) {
        ++cpu_.regs.rip;
        return true;
      }
      [[fallthrough]];
    case Step::Kind::kFail:
      vm_.vcpu_failed(*this, "unsupported instruction at RIP " + std::to_string(cpu_.regs.rip));
      return false;
    case Step::Kind::kSpin:
      std::this_thread::yield();
      return true;
    case Step::Kind::kSpinUntilGo:
      if (engine_.go.load()) ++cpu_.regs.rip;
      std::this_thread::yield();
      return true;
    case Step::Kind::kGo:
      engine_.go.store(true);
      ++cpu_.regs.rip;
      return true;
    case Step::Kind::kExclusive:
      // Refused: parks behind the other pauser at the loop's top, then
      // tries again.
      if (!vm_.begin_exclusive(*this)) return true;
      engine_.parked_in_exclusive.store(engine_.parked.load());
      vm_.end_exclusive();
      ++cpu_.regs.rip;
      return true;
  }
  return false;
}

}  // namespace vmfork::testing
