// The engine-neutral CpuState (vmm/hypervisor/cpu_state.h): each engine's
// state goes through it and back unchanged, and a state one engine made
// starts the other.
#include "vmm/hypervisor/cpu_state.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/guestmm/test_support.h"
#include "vmm/boot/boot_layout.h"
#include "vmm/kvm/kvm_cpu_state.h"
#include "vmm/soft/soft_cpu_state.h"

namespace vmfork::testing {
namespace {

VcpuBootState boot_state(uint32_t vcpu) {
  const GuestLayout layout = unwrap(GuestLayout::create(uint64_t{64} << 20, 2));
  return initial_vcpu_state(layout, layout.image_base(), vcpu);
}

bool same_bytes(const auto& a, const auto& b) {
  static_assert(sizeof(a) == sizeof(b));
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// A KVM state with every field set to something of its own.
kvm::KvmCpuState busy_kvm_state() {
  kvm::KvmCpuState state = kvm::kvm_start_state(boot_state(1));
  state.regs.rax = 0x1111;
  state.regs.rbx = 0x2222;
  state.regs.r15 = 0xf0f0;
  state.regs.rflags = 0x246;
  state.sregs.cr2 = 0xdead000;
  state.sregs.cr8 = 3;
  state.sregs.fs.base = 0x7000;
  state.sregs.gs.avl = 1;
  state.sregs.interrupt_bitmap[1] = 0x80;
  state.fpu.fcw = 0x27f;
  state.fpu.xmm[3][5] = 0x5a;
  state.fpu.mxcsr = 0x1fa0;
  state.msrs[0] = {0xc0000082, 0xffffffff81000000};
  state.msrs[1] = {0x00000277, 0x0007040600070406};
  state.msr_count = 2;
  state.tsc_offset = 12345;
  return state;
}

TEST(CpuState, AKvmStateGoesThroughTheNeutralStateUnchanged) {
  const kvm::KvmCpuState before = busy_kvm_state();
  const kvm::KvmCpuState after = kvm::from_neutral(kvm::to_neutral(before));
  EXPECT_TRUE(same_bytes(after.regs, before.regs));
  EXPECT_TRUE(same_bytes(after.sregs, before.sregs));
  EXPECT_TRUE(same_bytes(after.fpu, before.fpu));
  ASSERT_EQ(after.msr_count, before.msr_count);
  for (uint32_t i = 0; i < before.msr_count; ++i) {
    EXPECT_EQ(after.msrs[i].index, before.msrs[i].index);
    EXPECT_EQ(after.msrs[i].value, before.msrs[i].value);
  }
  EXPECT_EQ(after.tsc_offset, before.tsc_offset);
}

TEST(CpuState, APcVcpusStateTravelsWholeInTheBlob) {
  kvm::KvmCpuState before = busy_kvm_state();
  EXPECT_FALSE(kvm::from_neutral(kvm::to_neutral(before)).pc) << "a freestanding vCPU has none";
  kvm::PcCpuState& pc = before.pc.emplace();
  pc.xsave.region[0] = 0x37f;
  pc.xsave.region[1023] = 0xfeed;
  pc.xcrs.nr_xcrs = 1;
  pc.xcrs.xcrs[0].value = 7;
  pc.mp_state.mp_state = KVM_MP_STATE_HALTED;
  pc.lapic.regs[0x20] = 3;
  pc.events.nmi.pending = 1;
  pc.debugregs.dr7 = 0x400;
  pc.msr_count = 2;
  pc.msrs[0] = {.index = 0x4b564d01, .reserved = 0, .data = 0x1234001};
  pc.msrs[1] = {.index = 0x10, .reserved = 0, .data = 99};
  const kvm::KvmCpuState after = kvm::from_neutral(kvm::to_neutral(before));
  ASSERT_TRUE(after.pc);
  EXPECT_TRUE(same_bytes(*after.pc, *before.pc));
  EXPECT_TRUE(same_bytes(after.fpu, before.fpu));
  EXPECT_TRUE(same_bytes(after.regs, before.regs));
}

TEST(CpuState, KeepsTheKvmFpuAsTheKvmEnginesBlob) {
  const CpuState neutral = kvm::to_neutral(busy_kvm_state());
  EXPECT_EQ(neutral.fpu.engine, Engine::kKvm);
  EXPECT_FALSE(neutral.fpu.bytes.empty());
  EXPECT_EQ(neutral.regs.gpr[CpuRegisters::kRax], 0x1111u);
  EXPECT_EQ(neutral.control.cr2, 0xdead000u);
  ASSERT_EQ(neutral.msrs.size(), 2u);
  EXPECT_EQ(neutral.msrs[0].index, 0xc0000082u);
}

TEST(CpuState, ASoftStateGoesThroughTheNeutralStateUnchanged) {
  soft::CpuState before;
  for (unsigned i = 0; i < soft::kGprCount; ++i)
    before.gpr[i] = 0x100 + i;
  before.rip = 0x100040;
  before.rflags = 0x202;
  before.fs_base = 0x8000;
  before.gs_base = 0x9000;
  CpuState neutral = cpu_state_from_boot(boot_state(0));
  soft::from_soft(before, neutral);
  const soft::CpuState after = soft::to_soft(neutral);
  EXPECT_EQ(after.gpr, before.gpr);
  EXPECT_EQ(after.rip, before.rip);
  EXPECT_EQ(after.rflags, before.rflags);
  EXPECT_EQ(after.fs_base, before.fs_base);
  EXPECT_EQ(after.gs_base, before.gs_base);
}

TEST(CpuState, TheSoftEngineLeavesWhatItDoesNotHoldAsItFoundIt) {
  const CpuState start = kvm::to_neutral(busy_kvm_state());
  CpuState copy = start;
  soft::from_soft(soft::to_soft(start), copy);
  EXPECT_EQ(copy, start);
}

TEST(CpuState, TheBootStateMeansTheSameRegistersOnBothEngines) {
  const VcpuBootState boot = boot_state(1);
  const soft::CpuState soft_start = soft::to_soft(cpu_state_from_boot(boot));
  const kvm::KvmCpuState kvm_start = kvm::kvm_start_state(boot);
  EXPECT_EQ(soft_start.reg(soft::Gpr::kRdi), kvm_start.regs.rdi);
  EXPECT_EQ(soft_start.reg(soft::Gpr::kRsi), kvm_start.regs.rsi);
  EXPECT_EQ(soft_start.reg(soft::Gpr::kRsp), kvm_start.regs.rsp);
  EXPECT_EQ(soft_start.rip, kvm_start.regs.rip);
  EXPECT_EQ(soft_start.rflags, kvm_start.regs.rflags);
}

TEST(CpuState, AStateWithoutAKvmBlobStartsKvmWithTheResetFpu) {
  const kvm::KvmCpuState state = kvm::from_neutral(cpu_state_from_boot(boot_state(0)));
  EXPECT_EQ(state.fpu.fcw, 0x37f);
  EXPECT_EQ(state.fpu.mxcsr, 0x1f80u);
  EXPECT_EQ(state.sregs.interrupt_bitmap[0], 0u);
  EXPECT_EQ(state.sregs.cs.l, 1);
}

}  // namespace
}  // namespace vmfork::testing
