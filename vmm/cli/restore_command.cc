#include "vmm/cli/restore_command.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "vmm/cli/count_arg.h"
#include "vmm/cli/duration_arg.h"
#include "vmm/cli/engine_choice.h"
#include "vmm/cli/stop_signals.h"
#include "vmm/cli/vm_session.h"
#include "vmm/clock.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/snapshot/working_set.h"
#include "vmm/vm/monitor.h"
#include "vmm/vm/restore.h"

namespace vmfork::cli {

namespace {

struct RestoreArgs {
  std::string dir;
  uint32_t clones = 1;
  uint64_t pool_bytes = 0;  // 0: what the host has available
  EngineChoice engine = EngineChoice::kAuto;
  bool eager = false;
  bool no_prefetch = false;
  uint64_t record_working_set_ns = 0;  // 0: none
  bool memory_checksum = false;
  std::string snapshot_dir;        // empty: none
  uint64_t snapshot_after_ns = 0;  // 0: only at a guest's request
};

Result<int> restore(const RestoreArgs& args) {
  // Before any thread exists, so that every thread inherits the mask.
  StopSignals signals;
  const uint64_t requested_ns = now_ns();
  // Everything is checked before anything starts.
  Result<OpenedSnapshot> snapshot = open_snapshot(args.dir);
  if (!snapshot) return snapshot.error();
  const uint64_t opened_ns = now_ns();
  Result<Engine> engine = choose_engine(args.engine);
  if (!engine) return engine.error();
  spdlog::info("engine: {}; restoring {} clone(s) of {} ({} vCPU(s), {} MiB, taken on {})",
               to_string(*engine), args.clones, snapshot->dir.string(), snapshot->config.vcpus,
               snapshot->config.ram_bytes >> 20, to_string(snapshot->config.engine));
  const uint64_t pool_bytes = args.pool_bytes != 0 ? args.pool_bytes : default_pool_bytes();
  Result<std::unique_ptr<Monitor>> monitor = Monitor::create(open_hypervisor, pool_bytes);
  if (!monitor) return monitor.error();
  if (args.memory_checksum) (*monitor)->record_memory_checksums();
  SessionOptions session{.latency_of = "restore", .tasks = {}};
  if (!args.snapshot_dir.empty()) {
    (*monitor)->set_snapshot_target(args.snapshot_dir, snapshot->config.guest);
    if (args.snapshot_after_ns != 0) {
      session.tasks.push_back(
          timed_snapshot(**monitor, "restored.1", args.snapshot_dir, args.snapshot_after_ns));
    }
  }
  Result<Hypervisor*> hypervisor = (*monitor)->hypervisor(*engine);
  if (!hypervisor) return hypervisor.error();
  // A working set is recorded from what the clones read themselves.
  const bool prefetch = !args.no_prefetch && args.record_working_set_ns == 0;
  Result<Restored> restored = restore_clones(
      **monitor, **hypervisor, *snapshot,
      {.clones = args.clones, .eager = args.eager, .prefetch = prefetch}, requested_ns);
  if (!restored) return restored.error();
  spdlog::debug("restore: snapshot opened and checked in {:.1f} us, clones built in {:.1f} us",
                static_cast<double>(opened_ns - requested_ns) / 1e3,
                static_cast<double>(restored->build_ns) / 1e3);
  if (args.eager) {
    spdlog::info("eager restore: read the memory file in {:.1f} ms",
                 static_cast<double>(restored->read_ns) / 1e6);
  }
  if (args.record_working_set_ns != 0) {
    session.tasks.push_back(
        {.what = "--record-working-set",
         .after_ns = args.record_working_set_ns,
         .or_at_end = true,
         .run = [cache = restored->cache, dir = snapshot->dir]() -> Result<std::string> {
           const std::vector<uint64_t> chunks = cache->loaded_chunks();
           if (Result<void> written = write_working_set(dir, chunks); !written) {
             return written.error();
           }
           return fmt::format("working set {}: {} chunk(s) of 64 KiB",
                              (dir / kWorkingSetFileName).string(), chunks.size());
         }});
  }
  const int status = run_session(**monitor, signals, session);
  if (restored->prefetch) {
    spdlog::debug("working set prefetch read {} chunk(s)", restored->prefetch->chunks_read());
  }
  return status;
}

}  // namespace

void add_restore_command(CLI::App& app, std::function<int()>& chosen) {
  auto args = std::make_shared<RestoreArgs>();
  CLI::App* restore_command = app.add_subcommand(
      "restore",
      "Start --clones N clones of a snapshot directory (written by `vmfork run --snapshot`) and "
      "run them until all have ended; a snapshot taken on either engine restores on either. "
      "Clone k is named restored.k, its boot-info clone_id is k, and the vCPU that asked for "
      "the snapshot (port 0x511) resumes with RAX = k. Memory is read lazily, a 64 KiB chunk "
      "on first touch, and the clones share every page they have not written. The snapshot "
      "is checked (files, checksums of the JSON files, sizes, versions, parent chain) before "
      "any clone starts; a memory chunk whose checksum does not match ends the clone that "
      "touched it. Exit status as for `run`.");
  restore_command->add_option("dir", args->dir, "The snapshot directory")->required();
  restore_command->add_option("--clones", args->clones, "Clones to start, 1 to 1024 (default: 1)")
      ->type_name("N")
      ->check(count_in_range(1, 1024));
  add_engine_options(*restore_command, args->engine, args->pool_bytes);
  restore_command->add_flag("--eager", args->eager,
                            "Read the whole memory file (checking every chunk) before any clone "
                            "starts, instead of on first touch");
  restore_command
      ->add_option("--record-working-set", args->record_working_set_ns,
                   "Record the memory chunks the clones read in their first DURATION (250ms, "
                   "2s), or until they end, into DIR/working_set.json; later restores of DIR read "
                   "them in the "
                   "background while their clones run (no prefetch during this one)")
      ->transform(duration_transform())
      ->type_name("DURATION");
  restore_command->add_flag("--no-prefetch", args->no_prefetch,
                            "Do not read DIR/working_set.json's chunks ahead of the clones");
  restore_command->add_flag("--memory-checksum", args->memory_checksum,
                            "After every VM has ended, print \"memory-checksum <vm> <hash>\" per "
                            "VM in launch order (as `run` does)");
  add_snapshot_options(*restore_command, args->snapshot_dir, args->snapshot_after_ns,
                       "Snapshot directory for a snapshot of a clone (restored.1 after "
                       "--snapshot-after, or any clone that asks on port 0x511): a diff that "
                       "stores only the pages no longer shared with DIR, which it names as its "
                       "parent");
  restore_command->callback([args, &chosen] {
    chosen = [args] { return run_reporting_errors([args] { return restore(*args); }); };
  });
}

}  // namespace vmfork::cli
