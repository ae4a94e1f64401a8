#include "vmm/soft/soft_hypervisor.h"

#include "vmm/soft/soft_vcpu.h"

namespace vmfork::soft {

namespace {

class SoftMachine final : public Machine {
 public:
  explicit SoftMachine(VmHost& vm) : vm_(vm) {}

  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t index, const VcpuSnapshot& from) override {
    Result<std::unique_ptr<SoftVcpu>> made = SoftVcpu::create(vm_, index, from);
    if (!made) return made.error();
    return std::unique_ptr<Vcpu>(std::move(*made));
  }
  // Faults are served on the vCPUs' own threads, parked during a snapshot.
  std::unique_lock<std::mutex> hold_faults() override { return {}; }
  // The vCPUs' TLBs flush at the shootdown of the snapshot's clone.
  Result<void> restart_memory_locked() override { return Ok{}; }
  void log_counters(const std::string& /*vm_name*/) const override {}

 private:
  VmHost& vm_;
};

class SoftHypervisor final : public Hypervisor {
 public:
  Engine engine() const override { return Engine::kSoft; }
  vmfork::CpuState start_state(const VcpuBootState& boot) const override {
    return cpu_state_from_boot(boot);
  }
  Result<std::unique_ptr<Machine>> create_machine(VmHost& vm, uint32_t /*vcpu_count*/) override {
    if (vm.platform() != Platform::kFreestanding) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the soft engine runs the freestanding guests of DESIGN section 8 only; "
                        "a Linux kernel needs --engine kvm");
    }
    return std::unique_ptr<Machine>(std::make_unique<SoftMachine>(vm));
  }
};

}  // namespace

std::unique_ptr<Hypervisor> open_soft_hypervisor() {
  return std::make_unique<SoftHypervisor>();
}

}  // namespace vmfork::soft
