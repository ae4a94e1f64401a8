// The VM's life through the engine interface, on a fake engine: how a VM
// starts, pauses, resumes and ends, and that its engine is asked for
// everything it runs on.
#include <gtest/gtest.h>

#include <thread>

#include "tests/vm/vm_test_support.h"

namespace vmfork::testing {
namespace {

TEST(VmLifecycle, EndsWithTheStatusTheGuestWritesToTheExitPort) {
  FakeHypervisor engine({{exit_with(7)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  EXPECT_EQ(monitor->wait(), 7);
  EXPECT_EQ(monitor->tally().launched, 1u);
  EXPECT_EQ(monitor->tally().failed, 1u);
}

TEST(VmLifecycle, EndsWithStatusZeroWhenEveryVcpuHasHalted) {
  FakeHypervisor engine(
      {{halt()}, {out(port::kConsole, 1, 'x'), out(port::kConsole, 1, '\n'), halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_EQ(monitor->tally().failed, 0u);
}

TEST(VmLifecycle, MakesOneMachineAndEveryVcpuThroughTheEngine) {
  FakeHypervisor engine({{halt()}, {halt()}, {halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 3);
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_EQ(engine.machines.load(), 1);
  EXPECT_EQ(engine.vcpus.load(), 3);
}

TEST(VmLifecycle, StartsVcpuIFromTheEnginesStartStateWithRdiI) {
  FakeHypervisor engine({{halt()}, {halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  EXPECT_EQ(monitor->wait(), 0);
  std::lock_guard lock(engine.started_mutex);
  ASSERT_EQ(engine.started.size(), 2u);
  constexpr unsigned kRdi = 7;
  for (uint64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(engine.started[i].regs.gpr[kRdi], i);
    EXPECT_EQ(engine.started[i].regs.rip, 0u);  // the fake's start state, not the boot RIP
  }
}

TEST(VmLifecycle, AnEngineThatRefusesAVcpuFailsTheBootAndNothingRuns) {
  FakeHypervisor engine({{halt()}});
  engine.refuse_vcpus = true;
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  Result<std::unique_ptr<Vm>> vm = boot_fake(*monitor, 1);
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(vm.error().message.find("refuses"), std::string::npos) << vm.error().message;
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_EQ(monitor->tally().launched, 0u);
}

TEST(VmLifecycle, AnExclusiveSectionRunsWithEveryOtherVcpuParked) {
  FakeHypervisor engine({{exclusive(), halt()}, {spin()}, {spin()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 3);
  // vCPU 0 halts after its section; the spinners run until the stop.
  while (engine.parked_in_exclusive.load() < 0)
    std::this_thread::yield();
  EXPECT_EQ(engine.parked_in_exclusive.load(), 2);
  monitor->stop_all(0);
  EXPECT_EQ(monitor->wait(), 0);
}

TEST(VmLifecycle, VcpusParkedForAPauseRunOnAfterIt) {
  // vCPU 1 can only leave its spin after vCPU 0's section: it resumed.
  FakeHypervisor engine({{exclusive(), go(), halt()}, {spin_until_go(), exit_with(5)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  EXPECT_EQ(monitor->wait(), 5);
  EXPECT_EQ(engine.parked_in_exclusive.load(), 1);
}

TEST(VmLifecycle, AnUnknownPortEndsTheVmWithAnError) {
  FakeHypervisor engine({{out(0x1234, 1, 0), halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  EXPECT_EQ(monitor->wait(), static_cast<int>(kVmErrorStatus));
}

}  // namespace
}  // namespace vmfork::testing
