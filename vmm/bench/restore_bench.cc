#include "vmm/bench/restore_bench.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "vmm/bench/guest_code.h"
#include "vmm/bench/host_memory.h"
#include "vmm/bench/progress.h"
#include "vmm/bench/stats.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/cli/size_arg.h"
#include "vmm/clock.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/snapshot/file_io.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/snapshot/working_set.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"
#include "vmm/vm/restore.h"

namespace vmfork::bench {

namespace {

// The snapshot directory of one size: made by mkdtemp, removed with
// everything in it when the bench is done with the size, errors included.
class TempDir {
 public:
  static Result<TempDir> create() {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string pattern = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                          "/vmfork-bench-restore-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return make_error(ErrorCode::kSystem, fmt::format("cannot make a temporary directory {}: {}",
                                                        pattern, std::strerror(errno)));
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// The pages each clone works on: `work_pages` pages spread evenly from the
// page after the guest's code to the bottom of its stack.
struct WorkSpread {
  uint64_t first_page = 0;
  uint64_t stride = 0;
};

Result<WorkSpread> work_spread(const GuestLayout& layout, uint32_t work_pages) {
  const uint64_t first_page = layout.image_base().value() + kPageSize;
  const uint64_t end = layout.stacks_bottom().value();
  const uint64_t stride =
      end > first_page ? (end - first_page) / work_pages / kPageSize * kPageSize : 0;
  if (stride == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--work-pages {} is more than the {} pages of {} of guest RAM "
                                  "between its code and its stack",
                                  work_pages, end > first_page ? (end - first_page) / kPageSize : 0,
                                  cli::format_size(layout.ram_bytes())));
  }
  return WorkSpread{.first_page = first_page, .stride = stride};
}

// Host memory a size needs at most: the warm VM's frames (the snapshot is
// taken from them), then an eager restore's copy of the memory file, and
// what the clones write (a frame and its page tables per page of work).
uint64_t host_bytes_needed(uint64_t ram_bytes, uint32_t max_clones, uint32_t work_pages) {
  return ram_bytes + uint64_t{max_clones} * work_pages * 2 * kPageSize + (uint64_t{64} << 20);
}

// The frame pool of one monitor: on demand, so only what is written costs
// host memory; room for every page of RAM (the warm VM's, or the page
// cache's), the page tables, and each clone's written pages and tables.
uint64_t pool_bytes_for(uint64_t ram_bytes, uint32_t clones, uint32_t work_pages) {
  return ram_bytes + ram_bytes / 128 +
         uint64_t{clones} * (uint64_t{work_pages} * 4 * kPageSize + (uint64_t{1} << 20)) +
         (uint64_t{64} << 20);
}

// A warm VM of one vCPU, every page of its RAM above 1 MiB written,
// snapshots itself into `dir` and ends.
Result<RestoreSnapshotRow> make_snapshot(Engine engine, const std::filesystem::path& dir,
                                         const GuestLayout& layout, const WorkSpread& spread,
                                         uint32_t work_pages) {
  Result<std::unique_ptr<Monitor>> monitor = Monitor::create(
      open_hypervisor, pool_bytes_for(layout.ram_bytes(), 0, 0), Populate::kOnDemand);
  if (!monitor) return monitor.error();
  const std::vector<std::byte> code =
      snapshot_then_work_code(spread.first_page, spread.stride, work_pages);
  Result<std::unique_ptr<Vm>> vm =
      boot_code(**monitor, engine, "warm", code, layout, MapAllRam::kNo);
  if (!vm) return vm.error();
  const uint64_t warm_start = now_ns();
  for (uint64_t page = layout.image_base().value() + kPageSize;
       page < layout.stacks_bottom().value(); page += kPageSize) {
    // A non-zero word makes the page one the snapshot stores and an eager
    // restore reads: the VM touched all its memory.
    const uint64_t word = page | 1;
    if (Result<void> written = (*vm)->space().write(Gpa(page), std::as_bytes(std::span(&word, 1)));
        !written) {
      return written.error();
    }
  }
  spdlog::debug("restore bench: {} written from the host in {:.1f} ms",
                cli::format_size(layout.ram_bytes()),
                static_cast<double>(now_ns() - warm_start) / 1e6);
  (*monitor)->set_snapshot_target(dir, "bench restore guest");
  if (Result<void> launched = (*monitor)->launch(std::move(*vm)); !launched) {
    return launched.error();
  }
  if (const int status = (*monitor)->wait(); status != 0) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("the restore bench guest ended with status {}", status));
  }
  const std::vector<SnapshotReport> snapshots = (*monitor)->snapshots();
  if (snapshots.size() != 1) {
    return make_error(
        ErrorCode::kInternal,
        fmt::format("expected 1 snapshot of the restore bench guest, saw {}", snapshots.size()));
  }
  return RestoreSnapshotRow{.ram_bytes = layout.ram_bytes(),
                            .pause_ns = snapshots[0].pause_ns,
                            .write_ns = snapshots[0].write_ns,
                            .pages = snapshots[0].pages,
                            .working_set_chunks = 0,
                            .state_bytes = 0,
                            .state_read_ns = 0,
                            .state_json_parse_ns = 0,
                            .state_check_ns = 0};
}

// Times the parts of open_snapshot that grow with the RAM (see
// RestoreSnapshotRow), once, into `row`.
Result<void> time_state_file(const std::filesystem::path& dir, RestoreSnapshotRow& row) {
  const std::filesystem::path path = dir / kStateFileName;
  uint64_t start = now_ns();
  Result<std::string> text = read_text_file(path, uint64_t{1} << 30);
  if (!text) return text.error();
  row.state_read_ns = now_ns() - start;
  row.state_bytes = text->size();
  start = now_ns();
  const nlohmann::json document = nlohmann::json::parse(*text, nullptr, false);
  row.state_json_parse_ns = now_ns() - start;
  if (document.is_discarded()) {
    return make_error(ErrorCode::kInternal, path.string() + ": not JSON");
  }
  start = now_ns();
  Result<StateFile> state = parse_state_json(path, *text);
  if (!state) return state.error();
  row.state_check_ns = now_ns() - start;
  return Ok{};
}

struct RestoreRun {
  std::vector<uint64_t> first_ns;  // per clone
  uint64_t work_ns = 0;
  uint64_t open_ns = 0;
  uint64_t read_ns = 0;
  uint64_t build_ns = 0;
  std::vector<uint64_t> loaded_chunks;  // the page cache's, after every clone ended
};

// Restores `clones` clones of `dir` in a fresh monitor and waits for them.
Result<RestoreRun> restore_once(Engine engine, const std::filesystem::path& dir, uint64_t ram_bytes,
                                uint32_t clones, uint32_t work_pages, RestoreMode mode) {
  Result<std::unique_ptr<Monitor>> monitor = Monitor::create(
      open_hypervisor, pool_bytes_for(ram_bytes, clones, work_pages), Populate::kOnDemand);
  if (!monitor) return monitor.error();
  // The engine is opened (/dev/kvm) outside the timed part: a restoring
  // process opens it once for all its restores.
  Result<Hypervisor*> hypervisor = (*monitor)->hypervisor(engine);
  if (!hypervisor) return hypervisor.error();

  RestoreRun run;
  const uint64_t start = now_ns();
  Result<OpenedSnapshot> opened = open_snapshot(dir);
  if (!opened) return opened.error();
  run.open_ns = now_ns() - start;
  Result<Restored> restored = restore_clones(**monitor, **hypervisor, *opened,
                                             {.clones = clones,
                                              .eager = mode == RestoreMode::kEager,
                                              .prefetch = mode == RestoreMode::kPrefetch},
                                             start);
  if (!restored) return restored.error();
  const uint64_t started_ns = now_ns() - start;
  const int status = (*monitor)->wait();
  run.work_ns = now_ns() - start;
  if (status != 0) {
    return make_error(
        ErrorCode::kInternal,
        fmt::format("a restored clone of the restore bench guest ended with status {}", status));
  }
  run.read_ns = restored->read_ns;
  run.build_ns = restored->build_ns;
  run.loaded_chunks = restored->cache->loaded_chunks();
  for (const ForkLatency& latency : (*monitor)->fork_latencies())
    run.first_ns.push_back(latency.ns);
  if (run.first_ns.size() != clones) {
    return make_error(ErrorCode::kInternal, fmt::format("expected {} restored clones, saw {}",
                                                        clones, run.first_ns.size()));
  }
  spdlog::debug(
      "restore bench: {} x{} {}: opened in {:.1f} us, memory file read in {:.1f} ms, clones "
      "built in {:.1f} us, all started {:.1f} us, first instruction {:.1f}..{:.1f} us, all "
      "ended {:.1f} ms, {} chunk(s) loaded{}",
      cli::format_size(ram_bytes), clones, to_string(mode), static_cast<double>(run.open_ns) / 1e3,
      static_cast<double>(run.read_ns) / 1e6, static_cast<double>(run.build_ns) / 1e3,
      static_cast<double>(started_ns) / 1e3, static_cast<double>(minimum(run.first_ns)) / 1e3,
      static_cast<double>(maximum(run.first_ns)) / 1e3, static_cast<double>(run.work_ns) / 1e6,
      run.loaded_chunks.size(),
      restored->prefetch ? fmt::format(" ({} by the prefetch)", restored->prefetch->chunks_read())
                         : "");
  return run;
}

// vm.max_map_count, 0 when it cannot be read.
uint64_t max_map_count() {
  std::ifstream file("/proc/sys/vm/max_map_count");
  uint64_t count = 0;
  file >> count;
  return count;
}

// The kvm engine gives each page a clone realizes or copies a host mapping
// of its own (about 2 per page of work: the page read in, then its copy),
// all in this process: more than vm.max_map_count of them (or more than one
// VM's share in a clone) fails clones in the middle of the run, so refuse
// such a run up front.
Result<void> check_host_mappings(const RestoreBenchOptions& options, uint32_t max_clones) {
  if (options.engine != Engine::kKvm) return Ok{};
  const uint64_t limit = max_map_count();
  if (limit == 0) return Ok{};
  const uint64_t per_clone = uint64_t{options.work_pages} * 2 + 64;
  // Each VM may use a quarter of the limit (vmm/kvm/kvm_machine.cc).
  if (per_clone > limit / 4) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--engine kvm: a clone writing --work-pages {} needs about {} "
                                  "host mappings (2 per page of work), above the {} of one VM "
                                  "(a quarter of this host's vm.max_map_count); lower --work-pages",
                                  options.work_pages, per_clone, limit / 4));
  }
  const uint64_t needed = uint64_t{max_clones} * per_clone + 4096;
  if (needed <= limit) return Ok{};
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("--engine kvm: {} clone(s) each writing --work-pages {} need about "
                                "{} host mappings (2 per page of work), above this host's "
                                "vm.max_map_count of {}; lower --work-pages or --clones",
                                max_clones, options.work_pages, needed, limit));
}

Result<void> check_options(const RestoreBenchOptions& options) {
  if (options.sizes.empty() || options.clones.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--sizes and --clones need at least one value");
  }
  const uint32_t max_clones = *std::max_element(options.clones.begin(), options.clones.end());
  if (Result<void> mappings = check_host_mappings(options, max_clones); !mappings) {
    return mappings.error();
  }
  for (uint64_t ram_bytes : options.sizes) {
    Result<GuestLayout> layout = GuestLayout::create(ram_bytes, 1);
    if (!layout) return layout.error();
    if (Result<WorkSpread> spread = work_spread(*layout, options.work_pages); !spread) {
      return spread.error();
    }
    if (Result<void> fits = require_available_memory(
            host_bytes_needed(ram_bytes, max_clones, options.work_pages),
            fmt::format("bench restore of {} (the warm VM, then an eager restore of {} clone(s))",
                        cli::format_size(ram_bytes), max_clones));
        !fits) {
      return fits.error();
    }
  }
  return Ok{};
}

// Every restore of one size, from its own snapshot (removed at the end).
Result<void> bench_size(const RestoreBenchOptions& options, uint64_t ram_bytes,
                        RestoreBenchReport& report, Progress& progress) {
  Result<GuestLayout> layout = GuestLayout::create(ram_bytes, 1);
  if (!layout) return layout.error();
  Result<WorkSpread> spread = work_spread(*layout, options.work_pages);
  if (!spread) return spread.error();
  Result<TempDir> dir = TempDir::create();
  if (!dir) return dir.error();
  std::error_code error;
  const std::filesystem::space_info disk = std::filesystem::space(dir->path(), error);
  if (!error && disk.available < ram_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("the snapshot of {} does not fit {} ({} free)",
                                  cli::format_size(ram_bytes), dir->path().parent_path().string(),
                                  cli::format_size(disk.available >> 20 << 20)));
  }

  progress.start_run(fmt::format("{} snapshot", cli::format_size(ram_bytes)));
  Result<RestoreSnapshotRow> snapshot =
      make_snapshot(options.engine, dir->path(), *layout, *spread, options.work_pages);
  if (!snapshot) return snapshot.error();
  // The working set of the prefetch mode: what one lazy clone read.
  progress.start_run(fmt::format("{} working set", cli::format_size(ram_bytes)));
  Result<RestoreRun> recording = restore_once(options.engine, dir->path(), ram_bytes, 1,
                                              options.work_pages, RestoreMode::kLazy);
  if (!recording) return recording.error();
  if (Result<void> written = write_working_set(dir->path(), recording->loaded_chunks); !written) {
    return written.error();
  }
  snapshot->working_set_chunks = recording->loaded_chunks.size();
  if (Result<void> timed = time_state_file(dir->path(), *snapshot); !timed) return timed.error();
  spdlog::info(
      "restore bench: {} snapshot: paused {:.1f} us, written in {:.1f} ms ({} pages); "
      "working set {} chunk(s) of 64 KiB",
      cli::format_size(ram_bytes), static_cast<double>(snapshot->pause_ns) / 1e3,
      static_cast<double>(snapshot->write_ns) / 1e6, snapshot->pages, snapshot->working_set_chunks);
  report.snapshots.push_back(*snapshot);

  for (uint32_t clones : options.clones) {
    for (RestoreMode mode : kRestoreModes) {
      std::vector<uint64_t> first;
      std::vector<uint64_t> after_open;
      std::vector<uint64_t> work;
      std::vector<uint64_t> open;
      std::vector<uint64_t> read;
      std::vector<uint64_t> build;
      const std::string what =
          fmt::format("{} x {} clone(s), {}", cli::format_size(ram_bytes), clones, to_string(mode));
      for (int i = 0; i < options.repeat; ++i) {
        progress.start_run(what);
        Result<RestoreRun> run =
            restore_once(options.engine, dir->path(), ram_bytes, clones, options.work_pages, mode);
        if (!run) return run.error();
        first.insert(first.end(), run->first_ns.begin(), run->first_ns.end());
        for (uint64_t ns : run->first_ns)
          after_open.push_back(ns - run->open_ns);
        work.push_back(run->work_ns);
        open.push_back(run->open_ns);
        read.push_back(run->read_ns);
        build.push_back(run->build_ns);
      }
      RestoreBenchRow row{.ram_bytes = ram_bytes,
                          .clones = clones,
                          .mode = mode,
                          .first_ns_median = median(first),
                          .first_ns_max = maximum(first),
                          .first_after_open_ns_median = median(after_open),
                          .work_ns_median = median(work),
                          .open_ns_median = median(open),
                          .read_ns_median = median(read),
                          .build_ns_median = median(build)};
      spdlog::info(
          "restore bench: {} with {} clone(s), {}: first instruction median {} ns, all "
          "done {} ns",
          cli::format_size(ram_bytes), clones, to_string(mode), row.first_ns_median,
          row.work_ns_median);
      report.rows.push_back(row);
    }
  }
  return Ok{};
}

}  // namespace

const char* to_string(RestoreMode mode) {
  switch (mode) {
    case RestoreMode::kLazy:
      return "lazy";
    case RestoreMode::kEager:
      return "eager";
    case RestoreMode::kPrefetch:
      return "prefetch";
  }
  return "?";
}

Result<RestoreBenchReport> run_restore_bench(const RestoreBenchOptions& options) {
  if (Result<void> checked = check_options(options); !checked) return checked.error();
  RestoreBenchReport report{.engine = options.engine,
                            .work_pages = options.work_pages,
                            .repeat = options.repeat,
                            .snapshots = {},
                            .rows = {}};
  // Per size: the snapshot, the working set's recording, then every restore.
  const size_t restores =
      options.clones.size() * kRestoreModes.size() * static_cast<size_t>(options.repeat);
  Progress progress("bench restore", static_cast<int>(options.sizes.size() * (2 + restores)));
  for (uint64_t ram_bytes : options.sizes) {
    if (Result<void> done = bench_size(options, ram_bytes, report, progress); !done) {
      return done.error();
    }
  }
  return report;
}

}  // namespace vmfork::bench
