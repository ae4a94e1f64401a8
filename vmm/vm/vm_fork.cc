// VM fork (DESIGN section 7): at a vCPU's request on the fork port, or from
// outside (the control API). Every vCPU is stopped at an instruction
// boundary, the memory is snapshotted in O(1), and each clone gets a space
// of its own over the snapshot, its vCPUs and threads, all built before any
// starts.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "guestmm/snapshot.h"
#include "vmm/boot/boot_info.h"
#include "vmm/boot/generation_page.h"
#include "vmm/clock.h"
#include "vmm/vm/host_pauser.h"
#include "vmm/vm/monitor.h"
#include "vmm/vm/vm.h"

namespace vmfork {

bool Vm::try_fork(Vcpu& forker, uint32_t clones) {
  const uint64_t requested_ns = now_ns();
  if (!pause_others(forker)) return false;
  const ForkClock clock{.requested_ns = requested_ns, .stopped_ns = now_ns()};
  // The forker stays parked: nobody needs its acknowledgements while the VM
  // is paused. Its RAX: 0, or -1 when no clone could start.
  uint64_t rax = ~uint64_t{0};
  if (!ending() && clones == 0) rax = 0;
  if (!ending() && clones > 0) {
    Result<std::vector<std::string>> made = fork_stopped(&forker, clones, clock);
    if (made) {
      rax = 0;
    } else {
      spdlog::warn("{}: fork of {} clone(s) refused: {}", name_, clones, made.error().message);
    }
  }
  if (Result<void> set = forker.set_fork_result(rax); !set) {
    vcpu_failed(forker, set.error().message);
  }
  spdlog::debug("{}: fork of {} clone(s) from vCPU {} took {} us on the request path", name_,
                clones, forker.index(), (now_ns() - requested_ns) / 1000);
  pause_.resume_others();
  forker.resuming();
  return true;
}

Result<std::vector<std::string>> Vm::fork_from_outside(uint32_t clones) {
  const uint64_t requested_ns = now_ns();
  std::lock_guard outside(outside_mutex_);
  if (Result<void> stopped = stop_vcpus_locked(*outside_pauser_); !stopped) {
    return stopped.error();
  }
  const ForkClock clock{.requested_ns = requested_ns, .stopped_ns = now_ns()};
  Result<std::vector<std::string>> made =
      ending() ? Result<std::vector<std::string>>(make_error(
                     ErrorCode::kWrongState, fmt::format("{} ended before it was forked", name_)))
               : fork_stopped(nullptr, clones, clock);
  restart_vcpus_locked();
  return made;
}

Result<std::vector<std::string>> Vm::fork_stopped(Vcpu* forker, uint32_t clones, ForkClock clock) {
  // Refused up front, before anything is built, when the clones' vCPUs
  // would not fit the monitor's limit (or it is stopping). Each clone still
  // reserves its own vCPUs as it is built, in case other forks took the
  // room meanwhile.
  if (Result<void> room = monitor_.check_vcpus(uint64_t{clones} * vcpus_.size()); !room) {
    return make_error(room.error().code, fmt::format("{} clone(s) of {} vCPU(s): {}", clones,
                                                     vcpus_.size(), room.error().message));
  }
  // A forker's request is the one being served: its copy stands after the
  // `out`, with RAX set per clone.
  const uint64_t freezing_ns = now_ns();
  Result<Frozen> frozen = freeze(forker);
  if (!frozen) return frozen.error();
  const uint64_t frozen_ns = now_ns();
  const uint32_t names_before = clones_made_;
  std::optional<uint32_t> forker_index;
  if (forker != nullptr) forker_index = forker->index();
  Result<std::vector<std::unique_ptr<Vm>>> built =
      build_clones(*frozen, forker_index, clones, clock.requested_ns);
  if (!built) {
    clones_made_ = names_before;  // no clone of this fork ran: the names are free again
    return built.error();
  }
  // The build ends here: launching the clones is part of each one's start.
  const uint64_t built_ns = now_ns();
  monitor_.record_fork_phases({.vm = name_,
                               .clones = clones,
                               .pause_ns = clock.stopped_ns - clock.requested_ns,
                               .snapshot_ns = frozen_ns - freezing_ns,
                               .build_ns = built_ns - frozen_ns,
                               .requested_ns = clock.requested_ns,
                               .built_at_ns = built_ns});
  std::vector<std::string> names;
  for (std::unique_ptr<Vm>& clone : *built) {
    names.push_back(clone->name());
    // Spawned already: the launch cannot fail.
    if (Result<void> launched = monitor_.launch(std::move(clone)); !launched) {
      spdlog::error("{}: {}", name_, launched.error().message);
    }
  }
  monitor_.record_fork(name_, names);
  return names;
}

Result<std::vector<std::unique_ptr<Vm>>> Vm::build_clones(Frozen& frozen,
                                                          std::optional<uint32_t> forker,
                                                          uint32_t clones, uint64_t requested_ns) {
  // Every clone is built, its threads made, before any starts: on an error
  // none does (the built ones are abandoned and destroyed).
  std::vector<std::unique_ptr<Vm>> built;
  std::vector<VcpuSnapshot>& states = frozen.vcpus;
  const PlatformSnapshot* platform = frozen.platform ? &*frozen.platform : nullptr;
  for (uint32_t k = 1; k <= clones; ++k) {
    Result<std::unique_ptr<AddressSpace>> space = frozen.memory->spawn(next_clone_name());
    if (!space) return space.error();
    // A freestanding guest reads k in its boot info, a PC in its generation page.
    Result<void> tagged = platform ? advance_generation(**space, k) : write_clone_id(**space, k);
    if (!tagged) return tagged.error();
    if (forker) states[*forker].cpu.regs.rax() = k;
    const std::string name = (*space)->name();
    Result<std::unique_ptr<Vm>> clone = Vm::create(monitor_, hypervisor_, name, std::move(*space),
                                                   layout_, states, requested_ns, platform);
    if (!clone) return clone.error();
    (*clone)->set_lineage({.parent = name_, .clone_id = k});
    if (Result<void> spawned = (*clone)->spawn(); !spawned) return spawned.error();
    built.push_back(std::move(*clone));
  }
  return built;
}

std::string Vm::next_clone_name() {
  return fmt::format("{}.{}", name_, ++clones_made_);
}

}  // namespace vmfork
