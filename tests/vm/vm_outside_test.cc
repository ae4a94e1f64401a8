// Operations on a VM from outside (vmm/vm/vm_pause.cc, vm_fork.cc,
// vm_snapshot.cc), as the control API makes them, on the fake engine:
// pause and resume, fork from outside (running or paused), snapshot kinds,
// the exact walk of a paused VM, and what the monitor tells its listener.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tests/vm/vm_test_support.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/vm/monitor_listener.h"
#include "vmm/vm/restore.h"

namespace vmfork::testing {
namespace {

// Records what the monitor says, in order.
class RecordingListener final : public MonitorListener {
 public:
  void vm_launched(const VmLaunched& launched) override {
    std::lock_guard lock(mutex_);
    std::string line = "launched " + launched.vm;
    if (launched.lineage) {
      line += " of " + launched.lineage->parent + " #" + std::to_string(launched.lineage->clone_id);
    }
    lines_.push_back(line);
  }
  void vm_first_instruction(const std::string& vm, uint64_t /*latency_ns*/) override {
    std::lock_guard lock(mutex_);
    first_instructions_.push_back(vm);
  }
  void vm_failed(const std::string& vm, const std::string& /*message*/) override {
    std::lock_guard lock(mutex_);
    lines_.push_back("failed " + vm);
  }
  void vm_ended(const VmEnded& ended) override {
    std::lock_guard lock(mutex_);
    lines_.push_back("ended " + ended.vm + " " + std::to_string(ended.status));
  }
  void vm_forked(const std::string& vm, const std::vector<std::string>& clones) override {
    std::lock_guard lock(mutex_);
    lines_.push_back("forked " + vm + " into " + std::to_string(clones.size()));
  }
  void vm_snapshotted(const SnapshotReport& report) override {
    std::lock_guard lock(mutex_);
    lines_.push_back("snapshotted " + report.vm + (report.diff ? " diff" : " full"));
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::vector<std::string> first_instructions() const {
    std::lock_guard lock(mutex_);
    return first_instructions_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::vector<std::string> first_instructions_;
};

bool contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// Snapshots a one-vCPU VM of `engine` (which spins until go) into `dir`
// from outside, then lets it exit.
void snapshot_one_vm(FakeHypervisor& engine, const std::filesystem::path& dir) {
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  (void)unwrap(monitor->snapshot_vm("vm0", dir));
  engine.go = true;
  EXPECT_EQ(monitor->wait(), 0);
}

// Runs `use` on the launched VM `name`.
template <class Use>
void on_vm(Monitor& monitor, const std::string& name, Use use) {
  ASSERT_TRUE(IsOk(monitor.with_vm(name, [&use](Vm& vm) { use(vm); })));
}

TEST(VmOutside, PauseParksEveryVcpuUntilResume) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}, {spin(), halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 2);
  on_vm(*monitor, "vm0", [&engine](Vm& vm) {
    ASSERT_TRUE(IsOk(vm.pause()));
    // pause() returns once both have parked.
    EXPECT_EQ(engine.parked.load(), 2);
    EXPECT_TRUE(vm.paused());
    const Result<void> again = vm.pause();
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::kWrongState);
    // Exact while paused: the walk sees the boot pages.
    const Result<SpaceAccounting> frames = vm.account_while_paused();
    ASSERT_TRUE(frames.ok());
    EXPECT_GT(frames->data_exclusive, 0u);
    engine.go = true;  // vCPU 0 may exit, once it runs again
    ASSERT_TRUE(IsOk(vm.resume()));
    EXPECT_FALSE(vm.paused());
    const Result<void> resumed = vm.resume();
    ASSERT_FALSE(resumed.ok());
    EXPECT_EQ(resumed.error().code, ErrorCode::kWrongState);
  });
  EXPECT_EQ(monitor->wait(), 0);
}

TEST(VmOutside, TheWalkIsRefusedWhileTheVmRuns) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  on_vm(*monitor, "vm0", [](Vm& vm) {
    const Result<SpaceAccounting> frames = vm.account_while_paused();
    ASSERT_FALSE(frames.ok());
    EXPECT_EQ(frames.error().code, ErrorCode::kWrongState);
  });
  engine.go = true;
  EXPECT_EQ(monitor->wait(), 0);
}

TEST(VmOutside, ForkFromOutsideStartsClonesThatKnowTheirParent) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}, {spin(), halt()}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  RecordingListener listener;
  monitor->set_listener(&listener);
  launch_fake(*monitor, 2);
  std::vector<std::string> clones;
  on_vm(*monitor, "vm0", [&clones](Vm& vm) {
    Result<std::vector<std::string>> made = vm.fork_from_outside(3);
    ASSERT_TRUE(made.ok()) << made.error().message;
    clones = *made;
    // The original runs on.
    EXPECT_FALSE(vm.paused());
  });
  EXPECT_EQ(clones, (std::vector<std::string>{"vm0.1", "vm0.2", "vm0.3"}));
  engine.go = true;
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_EQ(monitor->tally().launched, 4u);
  const std::vector<std::string> lines = listener.lines();
  EXPECT_TRUE(contains(lines, "launched vm0"));
  for (uint32_t k = 1; k <= 3; ++k) {
    EXPECT_TRUE(
        contains(lines, "launched vm0." + std::to_string(k) + " of vm0 #" + std::to_string(k)));
    EXPECT_TRUE(contains(lines, "ended vm0." + std::to_string(k) + " 0"));
  }
  EXPECT_TRUE(contains(lines, "forked vm0 into 3"));
  EXPECT_TRUE(contains(lines, "ended vm0 0"));
  // Each clone's first instruction is reported (its fork latency).
  EXPECT_EQ(listener.first_instructions().size(), 3u);
}

TEST(VmOutside, APausedVmForksAndStaysPaused) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}});
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  launch_fake(*monitor, 1);
  on_vm(*monitor, "vm0", [&engine](Vm& vm) {
    ASSERT_TRUE(IsOk(vm.pause()));
    engine.go = true;  // the clones exit at once; the original cannot yet
    Result<std::vector<std::string>> made = vm.fork_from_outside(2);
    ASSERT_TRUE(made.ok()) << made.error().message;
    EXPECT_TRUE(vm.paused());
    EXPECT_EQ(engine.parked.load(), 1);
    ASSERT_TRUE(IsOk(vm.resume()));
  });
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_EQ(monitor->tally().launched, 3u);
}

TEST(VmOutside, ADiffOfAVmNotRestoredIsRefusedAndAFullOneIsWritten) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}});
  TempDir tmp;
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  RecordingListener listener;
  monitor->set_listener(&listener);
  launch_fake(*monitor, 1);
  on_vm(*monitor, "vm0", [&tmp](Vm& vm) {
    const Result<SnapshotReport> diff = vm.snapshot_to(tmp / "d", Vm::SnapshotKind::kDiff);
    ASSERT_FALSE(diff.ok());
    EXPECT_EQ(diff.error().code, ErrorCode::kWrongState);
    EXPECT_FALSE(std::filesystem::exists(tmp / "d"));
    ASSERT_TRUE(IsOk(vm.pause()));
    const Result<SnapshotReport> full = vm.snapshot_to(tmp / "f", Vm::SnapshotKind::kFull);
    ASSERT_TRUE(full.ok()) << full.error().message;
    EXPECT_FALSE(full->diff);
    EXPECT_TRUE(vm.paused());  // a snapshot of a paused VM leaves it paused
    ASSERT_TRUE(IsOk(vm.resume()));
  });
  engine.go = true;
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_TRUE(contains(listener.lines(), "snapshotted vm0 full"));
  EXPECT_TRUE(open_snapshot(tmp / "f").ok());
}

TEST(VmOutside, ARestoredCloneSnapshotsFullOrDiffAsAsked) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}});
  TempDir tmp;
  snapshot_one_vm(engine, tmp / "s");
  engine.go = false;
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  Hypervisor* hypervisor = unwrap(monitor->hypervisor(Engine::kSoft));
  const Restored restored = unwrap(restore_clones(*monitor, *hypervisor, opened, {.clones = 1}, 0));
  on_vm(*monitor, "restored.1", [&tmp](Vm& vm) {
    ASSERT_TRUE(vm.lineage());
    EXPECT_EQ(vm.lineage()->clone_id, 1u);
    const Result<SnapshotReport> diff = vm.snapshot_to(tmp / "d", Vm::SnapshotKind::kDiff);
    ASSERT_TRUE(diff.ok()) << diff.error().message;
    EXPECT_TRUE(diff->diff);
    const Result<SnapshotReport> full = vm.snapshot_to(tmp / "f", Vm::SnapshotKind::kFull);
    ASSERT_TRUE(full.ok()) << full.error().message;
    EXPECT_FALSE(full->diff);
  });
  engine.go = true;
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_TRUE(unwrap(open_snapshot(tmp / "d")).state.parent.has_value());
  EXPECT_FALSE(unwrap(open_snapshot(tmp / "f")).state.parent.has_value());
}

TEST(VmOutside, AHeldCloneRefusesOperationsUntilLaunched) {
  FakeHypervisor engine({{spin_until_go(), exit_with(0)}});
  TempDir tmp;
  snapshot_one_vm(engine, tmp / "s");
  std::unique_ptr<Monitor> monitor = fake_monitor(engine);
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp / "s"));
  Hypervisor* hypervisor = unwrap(monitor->hypervisor(Engine::kSoft));
  Restored restored =
      unwrap(restore_clones(*monitor, *hypervisor, opened, {.clones = 2, .start = false}, 0));
  ASSERT_EQ(restored.held.size(), 2u);
  EXPECT_EQ(monitor->tally().launched, 0u);
  const Result<void> paused = restored.held[0]->pause();
  ASSERT_FALSE(paused.ok());
  EXPECT_EQ(paused.error().code, ErrorCode::kWrongState);
  const Result<std::vector<std::string>> forked = restored.held[0]->fork_from_outside(1);
  ASSERT_FALSE(forked.ok());
  EXPECT_EQ(forked.error().code, ErrorCode::kWrongState);
  ASSERT_TRUE(IsOk(monitor->launch(std::move(restored.held[0]))));
  restored.held.clear();  // the other is destroyed without ever running
  EXPECT_EQ(monitor->wait(), 0);
  EXPECT_EQ(monitor->tally().launched, 1u);
}

}  // namespace
}  // namespace vmfork::testing
