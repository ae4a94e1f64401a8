#include "vmm/kvm/kvm_hypervisor.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "vmm/kvm/kvm_cpu_state.h"
#include "vmm/kvm/kvm_host.h"
#include "vmm/kvm/kvm_machine.h"
#include "vmm/kvm/kvm_vcpu.h"
#include "vmm/kvm/kvm_vcpu_directory.h"

namespace vmfork::kvm {

namespace {

class KvmVm final : public Machine {
 public:
  explicit KvmVm(VmHost& vm) : vm_(vm) {}

  Result<void> init(KvmHost& host, uint32_t vcpu_count) {
    Result<std::unique_ptr<KvmMachine>> machine = KvmMachine::create(
        host, vm_.space(), vcpu_count, vm_.platform(),
        [this](const Error& error, pid_t thread_id) { memory_failed(error, thread_id); });
    if (!machine) return machine.error();
    machine_ = std::move(*machine);
    return Ok{};
  }

  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index, const VcpuSnapshot& from) override {
    Result<std::unique_ptr<KvmVcpu>> made =
        KvmVcpu::create(vm_, *machine_, directory_, index, from);
    if (!made) return made.error();
    return std::unique_ptr<Vcpu>(std::move(*made));
  }

  // Faults are served on the fault service's thread: none while it is held.
  std::unique_lock<std::mutex> hold_faults() override {
    return std::unique_lock(machine_->serve_mutex());
  }
  Result<void> restart_memory_locked() override { return machine_->restart_memory_locked(); }
  Result<EngineBlob> platform_state() const override {
    if (machine_->platform() != Platform::kPc) return EngineBlob{};
    Result<PcChipState> chips = machine_->pc_chips();
    if (!chips) return chips.error();
    EngineBlob blob{Engine::kKvm, std::vector<uint8_t>(sizeof(PcChipState))};
    std::memcpy(blob.bytes.data(), &*chips, sizeof(PcChipState));
    return blob;
  }
  Result<void> set_platform_state(const EngineBlob& state) override {
    if (state.bytes.empty()) return Ok{};
    if (machine_->platform() != Platform::kPc || state.engine != Engine::kKvm ||
        state.bytes.size() != sizeof(PcChipState)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the platform state is not a kvm PC's (another engine's or version's)");
    }
    PcChipState chips;
    std::memcpy(&chips, state.bytes.data(), sizeof(chips));
    return machine_->set_pc_chips(chips);
  }
  Result<void> set_irq_line(uint32_t gsi, bool level) override {
    return machine_->set_irq_line(gsi, level);
  }

  void log_counters(const std::string& vm_name) const override {
    const GuestRamCounters ram = machine_->ram().counters();
    spdlog::info(
        "{}: {} host mapping(s) of guest RAM; {} run(s) of {} page(s) realized, {} "
        "COW copies put in place, {} pages unprotected in place, {} RAM access(es) completed "
        "for KVM as MMIO",
        vm_name, machine_->ram().mappings(), ram.runs_mapped, ram.pages_realized, ram.remaps,
        ram.unprotects, ram.mmio_completions);
  }
  std::vector<EngineCounter> counters() const override {
    const GuestRamCounters ram = machine_->ram().counters();
    return {{"host_mappings", machine_->ram().mappings()},
            {"missing_faults", ram.missing_faults},
            {"runs_mapped", ram.runs_mapped},
            {"pages_realized", ram.pages_realized},
            {"write_faults", ram.write_faults},
            {"remaps", ram.remaps},
            {"unprotects", ram.unprotects},
            {"mmio_completions", ram.mmio_completions}};
  }

 private:
  // On a fault-service thread: a fault of the thread `thread_id` could not
  // be served.
  void memory_failed(const Error& error, pid_t thread_id) {
    if (!directory_.fail_memory(thread_id, error.message)) vm_.memory_failed(error.message);
  }

  VmHost& vm_;
  KvmVcpuDirectory directory_;
  // After directory_: its fault service calls memory_failed until it is gone.
  std::unique_ptr<KvmMachine> machine_;
};

class KvmHypervisor final : public Hypervisor {
 public:
  explicit KvmHypervisor(std::unique_ptr<KvmHost> host) : host_(std::move(host)) {}

  Engine engine() const override { return Engine::kKvm; }
  CpuState start_state(const VcpuBootState& boot) const override {
    return to_neutral(kvm_start_state(boot));
  }
  Result<std::unique_ptr<Machine>> create_machine(VmHost& vm, uint32_t vcpu_count) override {
    auto machine = std::make_unique<KvmVm>(vm);
    if (Result<void> made = machine->init(*host_, vcpu_count); !made) return made.error();
    return std::unique_ptr<Machine>(std::move(machine));
  }

 private:
  std::unique_ptr<KvmHost> host_;  // outlives the VMs (the monitor destroys them first)
};

}  // namespace

Result<std::unique_ptr<Hypervisor>> open_kvm_hypervisor() {
  Result<std::unique_ptr<KvmHost>> host = KvmHost::open();
  if (!host) return host.error();
  return std::unique_ptr<Hypervisor>(std::make_unique<KvmHypervisor>(std::move(*host)));
}

}  // namespace vmfork::kvm
