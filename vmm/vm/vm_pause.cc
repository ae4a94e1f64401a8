// Pausing a VM from outside (PATCH /vms/{id} of the control API), and the
// stop every operation from outside shares: all vCPUs parked at an
// instruction boundary, behind whatever pause a vCPU holds or waits for.
#include <fmt/format.h>

#include "vmm/vm/vm.h"

namespace vmfork {

Result<void> Vm::stop_vcpus_locked(PauseMember& host) {
  if (paused_) return Ok{};
  {
    std::lock_guard lock(mutex_);
    if (!started_) {
      return make_error(ErrorCode::kWrongState, fmt::format("{} has not started", name_));
    }
  }
  if (!pause_.take_from_outside(host)) {
    return make_error(ErrorCode::kWrongState, fmt::format("{} has ended", name_));
  }
  kick_all(nullptr);
  if (!pause_.wait_until_all_parked()) {
    pause_.resume_others();
    return make_error(ErrorCode::kWrongState, fmt::format("{} ended while it was paused", name_));
  }
  return Ok{};
}

void Vm::restart_vcpus_locked() {
  if (!paused_) pause_.resume_others();
}

Result<void> Vm::pause(const std::function<void()>& then) {
  std::lock_guard outside(outside_mutex_);
  if (paused_) {
    return make_error(ErrorCode::kWrongState, fmt::format("{} is paused already", name_));
  }
  if (Result<void> stopped = stop_vcpus_locked(*outside_pauser_); !stopped) return stopped;
  paused_ = true;
  if (then) then();
  return Ok{};
}

Result<void> Vm::resume(const std::function<void()>& then) {
  std::lock_guard outside(outside_mutex_);
  if (!paused_) return make_error(ErrorCode::kWrongState, fmt::format("{} is not paused", name_));
  paused_ = false;
  pause_.resume_others();
  if (then) then();
  return Ok{};
}

bool Vm::paused() const {
  std::lock_guard outside(outside_mutex_);
  return paused_;
}

Result<SpaceAccounting> Vm::account_while_paused() const {
  std::lock_guard outside(outside_mutex_);
  if (!paused_ || ending()) {
    return make_error(ErrorCode::kWrongState, fmt::format("{} is not paused", name_));
  }
  return space_->account();
}

}  // namespace vmfork
