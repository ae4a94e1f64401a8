// Snapshots of a running VM into a snapshot directory (DESIGN section 7):
// from a host thread (Vm::snapshot_to) or at a guest's request on port
// 0x511 (DESIGN section 8). The pause covers only the capture, O(1) in the
// RAM; the files are written from the frozen frames while the VM runs on.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "guestmm/page_cache.h"
#include "guestmm/snapshot.h"
#include "vmm/clock.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/snapshot/write_snapshot.h"
#include "vmm/vm/monitor.h"
#include "vmm/vm/vm.h"

namespace vmfork {

Result<SnapshotReport> Vm::snapshot_to(const std::filesystem::path& dir, SnapshotKind kind) {
  const uint64_t start = now_ns();
  Result<Frozen> frozen = make_error(ErrorCode::kInternal, "not frozen");
  {
    std::lock_guard outside(outside_mutex_);
    if (Result<void> stopped = stop_vcpus_locked(*outside_pauser_); !stopped) {
      return stopped.error();
    }
    frozen = ending() ? Result<Frozen>(make_error(
                            ErrorCode::kWrongState,
                            fmt::format("{} ended before it could be snapshotted", name_)))
                      : freeze(nullptr);
    restart_vcpus_locked();
  }
  const uint64_t pause_ns = now_ns() - start;
  if (!frozen) return frozen.error();
  // The files are written while the VM runs on (or stays paused), and while
  // other operations from outside go ahead.
  return write_frozen(dir, *frozen, std::nullopt, pause_ns, kind);
}

bool Vm::try_snapshot(Vcpu& requester) {
  const uint64_t start = now_ns();
  constexpr uint64_t kFailed = ~uint64_t{0};
  uint64_t rax = kFailed;
  const std::optional<std::filesystem::path> dir = monitor_.snapshot_dir();
  if (!dir) {
    spdlog::warn(
        "{}: vCPU {} asked for a snapshot (port 0x511), but the monitor was given no "
        "directory (run --snapshot DIR)",
        name_, requester.index());
  } else {
    if (!pause_others(requester)) return false;
    Result<Frozen> frozen =
        ending() ? Result<Frozen>(make_error(ErrorCode::kInvalidArgument, "the VM ends"))
                 : freeze(&requester);
    // The others run on; we stay parked (nobody waits for our
    // acknowledgements) while we write.
    pause_.resume_others();
    Result<SnapshotReport> written =
        frozen ? write_frozen(*dir, *frozen, requester.index(), now_ns() - start)
               : Result<SnapshotReport>(frozen.error());
    if (written) {
      rax = 0;
    } else {
      spdlog::warn("{}: snapshot requested by vCPU {} failed: {}", name_, requester.index(),
                   written.error().message);
    }
    requester.resuming();
  }
  if (Result<void> set = requester.set_fork_result(rax); !set) {
    vcpu_failed(requester, set.error().message);
  }
  return true;
}

Result<SnapshotReport> Vm::write_frozen(const std::filesystem::path& dir, const Frozen& frozen,
                                        std::optional<uint32_t> requester, uint64_t pause_ns,
                                        SnapshotKind kind) {
  std::shared_ptr<PageCache> restored_from = frozen.memory->page_cache();
  if (kind == SnapshotKind::kDiff && !restored_from) {
    return make_error(ErrorCode::kWrongState,
                      fmt::format("{} was not restored from a snapshot: a diff has no parent "
                                  "(take a Full snapshot)",
                                  name_));
  }
  if (kind == SnapshotKind::kFull) restored_from.reset();
  SnapshotConfig config{.vcpus = vcpu_count(),
                        .ram_bytes = layout_.ram_bytes(),
                        .guest = monitor_.guest_label(),
                        .engine = engine(),
                        .platform = platform()};
  SnapshotState state{.vcpus = frozen.vcpus,
                      .requester = requester,
                      .parent = std::nullopt,
                      .platform = frozen.platform};
  // A VM restored from a snapshot stores what it no longer shares with it.
  PagesToStore which = PagesToStore::kAll;
  if (restored_from) {
    state.parent = restored_from->origin();
    which = PagesToStore::kNotShared;
  }
  const MemorySnapshot& memory = *frozen.memory;
  const PageWalk walk = [&memory, which](const PageVisitor& visit) {
    return memory.for_each_page(which, visit);
  };
  Result<SnapshotWriteStats> stats = write_snapshot(dir, config, state, walk);
  if (!stats) return stats.error();
  SnapshotReport report{.vm = name_,
                        .dir = dir,
                        .pause_ns = pause_ns,
                        .write_ns = stats->write_ns,
                        .pages = stats->pages_written,
                        .diff = restored_from != nullptr};
  spdlog::info("{}: snapshot {} written: paused {:.1f} us, wrote {} page(s){} in {:.1f} ms", name_,
               dir.string(), static_cast<double>(pause_ns) / 1e3, report.pages,
               report.diff ? " (diff)" : "", static_cast<double>(report.write_ns) / 1e6);
  monitor_.record_snapshot(report);
  return report;
}

}  // namespace vmfork
