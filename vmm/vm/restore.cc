#include "vmm/vm/restore.h"

#include <fmt/format.h>

#include <memory>

#include "guestmm/page_cache.h"
#include "vmm/boot/boot_info.h"
#include "vmm/boot/generation_page.h"
#include "vmm/clock.h"

namespace vmfork {

Result<Restored> restore_clones(Monitor& monitor, Hypervisor& hypervisor,
                                const OpenedSnapshot& snapshot, const RestoreOptions& options,
                                uint64_t requested_ns) {
  const SnapshotConfig& config = snapshot.config;
  if (config.platform == Platform::kPc && hypervisor.engine() != Engine::kKvm) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} is a snapshot of a Linux guest: it restores on the kvm "
                                  "engine only (--engine kvm), not on {}",
                                  snapshot.dir.string(), to_string(hypervisor.engine())));
  }
  Result<GuestLayout> layout = snapshot_layout(config);
  if (!layout) {
    return make_error(layout.error().code,
                      fmt::format("{}: {}", snapshot.dir.string(), layout.error().message));
  }
  if (Result<void> room = monitor.check_vcpus(uint64_t{options.clones} * config.vcpus); !room) {
    return room.error();
  }
  Result<std::shared_ptr<PageCache>> cache =
      PageCache::create(monitor.memory(), snapshot.pages, snapshot.dir.string());
  if (!cache) return cache.error();
  Restored restored;
  if (options.eager) {
    const uint64_t start = now_ns();
    if (Result<void> read = (*cache)->load_all(); !read) return read.error();
    restored.read_ns = now_ns() - start;
  }

  const uint64_t build_start = now_ns();
  std::vector<VcpuSnapshot> states = snapshot.state.vcpus;
  const PlatformSnapshot* platform = snapshot.state.platform ? &*snapshot.state.platform : nullptr;
  std::vector<std::unique_ptr<Vm>> built;
  for (uint32_t k = 1; k <= options.clones; ++k) {
    const std::string name = fmt::format("{}.{}", options.name, k);
    Result<std::unique_ptr<AddressSpace>> space =
        monitor.memory().create_space(name, config.ram_bytes, *cache);
    if (!space) return space.error();
    // A freestanding guest reads k in its boot info, a PC in its generation
    // page (one past the snapshot's generation).
    Result<void> tagged = platform ? advance_generation(**space, k) : write_clone_id(**space, k);
    if (!tagged) return tagged.error();
    if (snapshot.state.requester) states[*snapshot.state.requester].cpu.regs.rax() = k;
    Result<std::unique_ptr<Vm>> clone = Vm::create(monitor, hypervisor, name, std::move(*space),
                                                   *layout, states, requested_ns, platform);
    if (!clone) return clone.error();
    (*clone)->set_lineage({.parent = snapshot.dir.string(), .clone_id = k});
    if (Result<void> spawned = (*clone)->spawn(); !spawned) return spawned.error();
    built.push_back(std::move(*clone));
    restored.clones.push_back(name);
  }
  restored.build_ns = now_ns() - build_start;
  restored.cache = *cache;
  if (!options.start) {
    restored.held = std::move(built);
    built.clear();
  }
  for (std::unique_ptr<Vm>& clone : built) {
    // Spawned already: the launch cannot fail.
    if (Result<void> launched = monitor.launch(std::move(clone)); !launched) {
      return launched.error();
    }
  }
  // Off the request path, and with nothing left to read after an eager
  // restore.
  if (options.prefetch && !options.eager) {
    restored.prefetch = std::make_unique<WorkingSetPrefetch>(*cache, snapshot.dir);
  }
  return restored;
}

}  // namespace vmfork
