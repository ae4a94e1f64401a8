// Fork (DESIGN sections 7 and 8) through the engine interface, on a fake
// engine: every clone is a machine and vCPUs the engine made from the
// snapshot's states, the forker's RAX tells the clones apart, and a vCPU's
// error ends its own VM only.
#include <gtest/gtest.h>

#include <thread>

#include "tests/vm/vm_test_support.h"

namespace vmfork::testing {
namespace {

TEST(VmFork, BuildsEachCloneThroughTheEngine) {
  // The forker's RAX is the exit status: 0 in the original, k in clone k.
  FakeHypervisor engine({{fork(3), exit_with_rax()}, {spin()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  EXPECT_EQ(monitor->wait(), 1);  // the first non-zero status in launch order: clone 1's
  EXPECT_EQ(monitor->tally().launched, 4u);
  EXPECT_EQ(monitor->tally().failed, 3u);
  EXPECT_EQ(engine.machines.load(), 4);
  EXPECT_EQ(engine.vcpus.load(), 8);
  EXPECT_EQ(monitor->fork_latencies().size(), 3u);
}

TEST(VmFork, RecordsOnePhaseBreakdownPerForkWithinEachClonesLatency) {
  // The phases are consecutive steps after the request, and every clone is
  // launched after the build: none can exceed a clone's latency.
  FakeHypervisor engine({{fork(3), exit_with(0)}, {spin()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  EXPECT_EQ(monitor->wait(), 0);
  const std::vector<ForkPhases> forks = monitor->fork_phases();
  ASSERT_EQ(forks.size(), 1u);
  const ForkPhases& phases = forks[0];
  EXPECT_EQ(phases.vm, "vm0");
  EXPECT_EQ(phases.clones, 3u);
  const uint64_t phases_ns = phases.pause_ns + phases.snapshot_ns + phases.build_ns;
  EXPECT_LE(phases_ns, phases.built_at_ns - phases.requested_ns);
  const std::vector<ForkLatency> latencies = monitor->fork_latencies();
  ASSERT_EQ(latencies.size(), 3u);
  for (const ForkLatency& latency : latencies) {
    EXPECT_LE(phases.built_at_ns - phases.requested_ns, latency.ns) << latency.clone;
  }
}

TEST(VmFork, RecordsNoPhasesForAForkThatStartedNoClone) {
  FakeHypervisor engine({{fork(2), exit_with(0)}});
  engine.refuse_restart = true;
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  (void)monitor->wait();
  EXPECT_TRUE(monitor->fork_phases().empty());
}

TEST(VmFork, ClonesStartFromTheSnapshotWithTheForkersRaxSet) {
  FakeHypervisor engine({{fork(2), exit_with_rax()}, {spin()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  (void)monitor->wait();
  std::lock_guard lock(engine.started_mutex);
  ASSERT_EQ(engine.started.size(), 6u);  // the original's two vCPUs, then each clone's
  for (uint64_t k = 1; k <= 2; ++k) {
    const CpuState& forker = engine.started[2 * k];
    const CpuState& other = engine.started[2 * k + 1];
    EXPECT_EQ(forker.regs.rip, 1u);  // past its `out`
    EXPECT_EQ(forker.regs.gpr[CpuRegisters::kRax], k);
    EXPECT_EQ(other.regs.rip, 0u);  // where it stood, parked
  }
}

TEST(VmFork, RestartsTheEnginesMemoryOncePerFork) {
  FakeHypervisor engine({{fork(1), fork(1), halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  EXPECT_EQ(monitor->wait(), 0);
  // The original forks twice, clone 1 once (its second `out`), clone 2 and
  // the clone of clone 1 not at all.
  EXPECT_EQ(engine.restarts.load(), 3);
  EXPECT_EQ(monitor->tally().launched, 4u);
}

TEST(VmFork, AnEngineThatCannotRestartMemoryEndsTheForkingVmAndStartsNoClone) {
  FakeHypervisor engine({{fork(2), exit_with(0)}});
  engine.refuse_restart = true;
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  EXPECT_EQ(monitor->wait(), static_cast<int>(kVmErrorStatus));
  EXPECT_EQ(monitor->tally().launched, 1u);
  EXPECT_EQ(engine.machines.load(), 1);
}

TEST(VmFork, AVcpuErrorEndsItsVmAlone) {
  // Clone 1 fails; the original waits for that, then ends normally.
  FakeHypervisor engine({{fork(1), fail_if_rax(1), spin_until_go(), exit_with(0)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  std::thread release([&] {
    while (!monitor->first_failure())
      std::this_thread::yield();
    engine.go = true;
  });
  EXPECT_EQ(monitor->wait(), static_cast<int>(kVmErrorStatus));
  release.join();
  EXPECT_EQ(monitor->tally().launched, 2u);
  EXPECT_EQ(monitor->tally().failed, 1u);
  ASSERT_TRUE(monitor->first_failure());
  EXPECT_EQ(monitor->first_failure()->vm, "vm0.1");
}

TEST(VmFork, AVcpuErrorInTheOriginalLeavesItsClonesRunning) {
  // The original fails once clone 1 runs; the clone then exits with 9.
  FakeHypervisor engine({{fork(1), fail_if_rax(0), spin_until_go(), exit_with(9)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  std::thread release([&] {
    while (!monitor->first_failure())
      std::this_thread::yield();
    engine.go = true;
  });
  EXPECT_EQ(monitor->wait(), static_cast<int>(kVmErrorStatus));
  release.join();
  EXPECT_EQ(monitor->tally().launched, 2u);
  EXPECT_EQ(monitor->tally().failed, 2u);
  EXPECT_EQ(monitor->first_failure()->vm, "vm0");
}

}  // namespace
}  // namespace vmfork::testing
