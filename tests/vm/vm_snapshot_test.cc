// Snapshots of a VM (vmm/vm/vm_snapshot.cc) and restores from them
// (vmm/vm/restore.cc) through the engine interface, on the fake engine: a
// guest's request on port 0x511, a snapshot from outside while the vCPUs
// run, and clones restored from the directory that resume where the
// snapshot stood, RAX = k in the requester of clone k.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "tests/support/temp_dir.h"
#include "tests/vm/vm_test_support.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/vm/restore.h"

namespace vmfork::testing {
namespace {

namespace fs = std::filesystem;

Step snapshot_request() {
  return out(port::kSnapshot, 4, 0);
}

// Restores `clones` clones of `dir` on `engine` in a monitor of their own
// and waits for them.
std::unique_ptr<Monitor> restore_and_wait(FakeHypervisor& engine, const fs::path& dir,
                                          uint32_t clones) {
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  const OpenedSnapshot opened = unwrap(open_snapshot(dir));
  Hypervisor* hypervisor = unwrap(monitor->hypervisor(Engine::kSoft));
  const Restored restored =
      unwrap(restore_clones(*monitor, *hypervisor, opened, {.clones = clones}, 0));
  EXPECT_EQ(restored.clones.size(), clones);
  (void)monitor->wait();
  return monitor;
}

TEST(VmSnapshot, AGuestRequestWritesTheDirectoryAndEachClonesRequesterSeesItsNumber) {
  // vCPU 1 asks while vCPU 0 spins; the original exits with RAX (0), each
  // restored clone k with k.
  FakeHypervisor engine({{spin(), halt()}, {snapshot_request(), exit_with_rax()}});
  TempDir tmp;
  {
    std::unique_ptr<Monitor> monitor = fake_monitor(engine);
    monitor->set_snapshot_target(tmp / "s", "fake");
    launch_fake(*monitor, 2);
    EXPECT_EQ(monitor->wait(), 0);
    ASSERT_EQ(monitor->snapshots().size(), 1u);
    EXPECT_FALSE(monitor->snapshots()[0].diff);
  }
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  EXPECT_EQ(opened.state.requester, 1u);
  EXPECT_EQ(opened.config.vcpus, 2u);
  EXPECT_EQ(opened.config.guest, "fake");

  std::unique_ptr<Monitor> restored = restore_and_wait(engine, tmp / "s", 3);
  EXPECT_EQ(restored->tally().launched, 3u);
  EXPECT_EQ(restored->tally().failed, 3u);  // statuses 1, 2, 3
  const std::optional<Monitor::Failure> first = restored->first_failure();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->vm, "restored.1");
  EXPECT_EQ(first->status, 1u);
  EXPECT_EQ(restored->fork_latencies().size(), 3u);
}

TEST(VmSnapshot, WithoutADirectoryTheRequestReturnsMinusOne) {
  FakeHypervisor engine({{snapshot_request(), exit_with_rax()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  (void)monitor->wait();
  ASSERT_TRUE(monitor->first_failure());
  EXPECT_EQ(monitor->first_failure()->status, 0xffffffffu);
  EXPECT_TRUE(monitor->snapshots().empty());
}

TEST(VmSnapshot, ANonEmptyDirectoryIsLeftAloneAndTheRequestReturnsMinusOne) {
  FakeHypervisor engine({{snapshot_request(), exit_with_rax()}});
  TempDir tmp;
  fs::create_directory(tmp / "s");
  fs::create_directory(tmp / "s" / "mine");
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  monitor->set_snapshot_target(tmp / "s", "fake");
  launch_fake(*monitor, 1);
  (void)monitor->wait();
  ASSERT_TRUE(monitor->first_failure());
  EXPECT_EQ(monitor->first_failure()->status, 0xffffffffu);
  EXPECT_TRUE(fs::is_directory(tmp / "s" / "mine"));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp / "s"), fs::directory_iterator()), 1);
}

TEST(VmSnapshot, FromOutsideEveryVcpuPausesAndRunsOnAfterwards) {
  // Both vCPUs run until the test lets them go, after the snapshot.
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}, {spin(), halt()}});
  TempDir tmp;
  {
    std::unique_ptr<Monitor> monitor = fake_monitor(engine);
    launch_fake(*monitor, 2);
    const SnapshotReport report = unwrap(monitor->snapshot_vm("vm0", tmp / "s"));
    EXPECT_EQ(report.dir, tmp / "s");
    EXPECT_FALSE(report.diff);
    engine.go = true;
    EXPECT_EQ(monitor->wait(), 0);
  }
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  EXPECT_FALSE(opened.state.requester);
  // The clones stand where the snapshot found them: vCPU 0 spinning until
  // go (set already: the fake engine's flag is the engine's), then exit 0.
  std::unique_ptr<Monitor> restored = restore_and_wait(engine, tmp / "s", 2);
  EXPECT_EQ(restored->tally().launched, 2u);
  EXPECT_EQ(restored->tally().failed, 0u);
}

TEST(VmSnapshot, ARestoredVmWritesADiffNamingItsParent) {
  // After its request, vCPU 0 waits for go: set at once in the original, by
  // the test in the restored clone, once it has snapshotted it from outside.
  const std::vector<std::vector<Step>> program{{snapshot_request(), spin_until_go(), exit_with(0)}};
  FakeHypervisor original(program);
  original.go = true;
  TempDir tmp;
  {
    std::unique_ptr<Monitor> monitor = fake_monitor(original);
    monitor->set_snapshot_target(tmp / "p", "fake");
    launch_fake(*monitor, 1);
    EXPECT_EQ(monitor->wait(), 0);
  }
  FakeHypervisor restored_engine(program);
  std::unique_ptr<Monitor> monitor = fake_monitor(restored_engine);
  const OpenedSnapshot parent = unwrap(open_snapshot(tmp / "p"));
  Hypervisor* hypervisor = unwrap(monitor->hypervisor(Engine::kSoft));
  (void)unwrap(restore_clones(*monitor, *hypervisor, parent, {.clones = 1}, 0));
  const SnapshotReport report = unwrap(monitor->snapshot_vm("restored.1", tmp / "d"));
  EXPECT_TRUE(report.diff);
  restored_engine.go = true;
  EXPECT_EQ(monitor->wait(), 0);
  const OpenedSnapshot diff = unwrap(open_snapshot(tmp / "d"));
  ASSERT_TRUE(diff.state.parent);
  EXPECT_EQ(*diff.state.parent, fs::canonical(tmp / "p"));
  EXPECT_EQ(diff.chain.size(), 2u);
}

TEST(VmSnapshot, SnapshottingAVmThatDoesNotRunIsAnError) {
  FakeHypervisor engine({{exit_with(0)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  TempDir tmp;
  Result<SnapshotReport> none = monitor->snapshot_vm("vm9", tmp / "s");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no VM named vm9"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp / "s"));
}

}  // namespace
}  // namespace vmfork::testing
