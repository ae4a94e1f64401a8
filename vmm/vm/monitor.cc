#include "vmm/vm/monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "vmm/vm/memory_checksum.h"

namespace vmfork {

int exit_status_for(uint32_t vm_status) {
  return vm_status <= 255 ? static_cast<int>(vm_status) : 255;
}

Result<std::unique_ptr<Monitor>> Monitor::create(OpenHypervisor open, uint64_t pool_bytes,
                                                 Populate populate) {
  Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = pool_bytes, .populate = populate});
  if (!memory) return memory.error();
  return std::unique_ptr<Monitor>(new Monitor(std::move(open), std::move(*memory)));
}

Monitor::~Monitor() {
  // Every VM (and its address space) goes before the memory it lives in,
  // and before its engine (the kvm engine's fault service).
  (void)wait();
}

Result<Hypervisor*> Monitor::hypervisor(Engine engine) {
  std::lock_guard lock(mutex_);
  std::unique_ptr<Hypervisor>& slot = hypervisors_[static_cast<size_t>(engine)];
  if (!slot) {
    Result<std::unique_ptr<Hypervisor>> opened = open_(engine);
    if (!opened) return opened.error();
    slot = std::move(*opened);
  }
  return slot.get();
}

std::vector<MemoryChecksum> Monitor::memory_checksums() const {
  std::vector<Checksum> sorted;
  {
    std::lock_guard lock(mutex_);
    sorted = checksums_;
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Checksum& a, const Checksum& b) { return a.order < b.order; });
  std::vector<MemoryChecksum> result;
  result.reserve(sorted.size());
  for (Checksum& entry : sorted)
    result.push_back(std::move(entry.checksum));
  return result;
}

Result<void> Monitor::check_vcpus_locked(uint64_t vcpus) const {
  if (stop_status_) return make_error(ErrorCode::kInvalidArgument, "the monitor is stopping");
  if (vcpus > kMaxVcpus - std::min(vcpus_reserved_, kMaxVcpus)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} more vCPU(s) would exceed the monitor's limit of {} vCPUs "
                                  "({} in use)",
                                  vcpus, kMaxVcpus, vcpus_reserved_));
  }
  return Ok{};
}

Result<void> Monitor::check_vcpus(uint64_t vcpus) const {
  std::lock_guard lock(mutex_);
  return check_vcpus_locked(vcpus);
}

Result<void> Monitor::reserve_vcpus(uint64_t vcpus) {
  std::lock_guard lock(mutex_);
  if (Result<void> room = check_vcpus_locked(vcpus); !room) return room;
  vcpus_reserved_ += vcpus;
  return Ok{};
}

void Monitor::release_vcpus(uint64_t vcpus) {
  std::lock_guard lock(mutex_);
  vcpus_reserved_ -= vcpus;
}

Result<void> Monitor::launch(std::unique_ptr<Vm> vm) {
  if (!vm->spawned()) {
    if (Result<void> spawned = vm->spawn(); !spawned) return spawned;
  }
  Vm& started = *vm;
  if (listener_ != nullptr) {
    listener_->vm_launched(VmLaunched{.vm = started.name(),
                                      .engine = started.engine(),
                                      .vcpus = started.vcpu_count(),
                                      .ram_bytes = started.layout().ram_bytes(),
                                      .lineage = started.lineage(),
                                      .console = started.console_journal()});
  }
  std::optional<uint32_t> stop;
  {
    std::lock_guard lock(mutex_);
    const uint64_t order = launches_++;
    running_.emplace(&started, Launched{order, std::move(vm)});
    stop = stop_status_;
  }
  // Told when it ends, from now on.
  started.start();
  if (stop) started.stop(*stop);
  return Ok{};
}

void Monitor::vm_ended(Vm& vm) {
  std::lock_guard lock(mutex_);
  ended_.push_back(&vm);
  vm_ended_.notify_all();
}

int Monitor::wait() {
  reap(/*until_stopped=*/false);
  std::lock_guard lock(mutex_);
  return first_failure_ ? exit_status_for(first_failure_->status) : 0;
}

void Monitor::serve_until_stopped() {
  reap(/*until_stopped=*/true);
}

void Monitor::reap(bool until_stopped) {
  for (;;) {
    Launched ended;
    {
      std::unique_lock lock(mutex_);
      const auto done = [this, until_stopped] {
        return running_.empty() && (!until_stopped || stop_status_);
      };
      vm_ended_.wait(lock, [this, &done] { return !ended_.empty() || done(); });
      if (ended_.empty()) break;  // nothing runs, so nothing can launch
      const Vm* vm = ended_.front();
      // A host thread (a snapshot from outside, the control API) still uses it.
      vm_ended_.wait(lock, [this, vm] { return pinned_.count(vm) == 0; });
      const auto found = running_.find(vm);
      ended_.pop_front();
      ended = std::move(found->second);
      running_.erase(found);
    }
    finish(std::move(ended));
  }
}

void Monitor::finish(Launched launched) {
  Vm& vm = *launched.vm;
  vm.join();  // its threads are leaving; the console's last line is printed
  const uint32_t status = vm.status();
  spdlog::info("{} ended with status {}", vm.name(), status);
  vm.log_engine_counters();
  if (listener_ != nullptr) {
    // Nothing runs in it any more: the walk is exact.
    listener_->vm_ended(VmEnded{.vm = vm.name(),
                                .status = status,
                                .faults = vm.space().counters(),
                                .frames = vm.space().account(),
                                .engine = vm.engine_counters()});
  }
  std::optional<Checksum> checksum;
  if (record_checksums_) {
    checksum = Checksum{launched.order, {vm.name(), memory_checksum(vm.space())}};
  }
  {
    std::lock_guard lock(mutex_);
    if (checksum) checksums_.push_back(std::move(*checksum));
    if (status != 0) {
      ++failures_;
      if (!first_failure_ || launched.order < first_failure_->order) {
        first_failure_ = Failure{launched.order, vm.name(), status};
      }
    }
  }
  // Its threads, descriptors and memory go back now, not when the VMs
  // launched before it have ended.
  launched.vm.reset();
}

void Monitor::stop_all(uint32_t status) {
  std::lock_guard lock(mutex_);
  if (stop_status_) return;
  stop_status_ = status;
  vm_ended_.notify_all();  // serve_until_stopped() ends once nothing runs
  // Under our lock, so none is destroyed meanwhile (wait() takes a VM out
  // of running_ under it first). Vm::stop takes only the VM's own lock.
  for (auto& [vm, launched] : running_)
    launched.vm->stop(status);
}

void Monitor::set_snapshot_target(std::filesystem::path dir, std::string guest_label) {
  snapshot_dir_ = std::move(dir);
  guest_label_ = std::move(guest_label);
}

Result<void> Monitor::with_vm(const std::string& name, const std::function<void(Vm&)>& use) {
  Vm* vm = nullptr;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, launched] : running_) {
      if (launched.vm->name() == name) vm = launched.vm.get();
    }
    if (vm == nullptr) {
      return make_error(ErrorCode::kNotFound, fmt::format("no VM named {} is running", name));
    }
    pinned_.insert(vm);
  }
  use(*vm);
  std::lock_guard lock(mutex_);
  pinned_.erase(pinned_.find(vm));
  vm_ended_.notify_all();
  return Ok{};
}

Result<SnapshotReport> Monitor::snapshot_vm(const std::string& name,
                                            const std::filesystem::path& dir) {
  Result<SnapshotReport> report = make_error(ErrorCode::kInternal, "not snapshotted");
  Result<void> found = with_vm(name, [&](Vm& vm) { report = vm.snapshot_to(dir); });
  if (!found) return found.error();
  return report;
}

Monitor::Tally Monitor::tally() const {
  std::lock_guard lock(mutex_);
  return {launches_, failures_};
}

std::optional<Monitor::Failure> Monitor::first_failure() const {
  std::lock_guard lock(mutex_);
  return first_failure_;
}

void Monitor::report_vm_error(const std::string& vm, const std::string& message) {
  // Always shown, whatever the log level: a VM ended on it.
  fmt::print(stderr, "vmfork: {}\n", message);
  std::fflush(stderr);
  if (listener_ != nullptr) listener_->vm_failed(vm, message);
}

void Monitor::record_fork_latency(const std::string& clone, uint64_t ns) {
  spdlog::info("{}: first instruction {:.1f} us after the fork or restore request", clone,
               static_cast<double>(ns) / 1000);
  if (listener_ != nullptr) listener_->vm_first_instruction(clone, ns);
  std::lock_guard lock(mutex_);
  fork_latencies_.push_back({clone, ns});
}

void Monitor::record_fork(const std::string& vm, const std::vector<std::string>& clones) {
  if (listener_ != nullptr) listener_->vm_forked(vm, clones);
}

void Monitor::record_fork_phases(ForkPhases phases) {
  spdlog::debug("{}: fork of {} clone(s): pause {} ns, snapshot {} ns, build {} ns", phases.vm,
                phases.clones, phases.pause_ns, phases.snapshot_ns, phases.build_ns);
  std::lock_guard lock(mutex_);
  fork_phases_.push_back(std::move(phases));
}

void Monitor::record_snapshot(const SnapshotReport& report) {
  if (listener_ != nullptr) listener_->vm_snapshotted(report);
  std::lock_guard lock(mutex_);
  snapshots_.push_back(report);
}

std::vector<SnapshotReport> Monitor::snapshots() const {
  std::lock_guard lock(mutex_);
  return snapshots_;
}

std::vector<ForkLatency> Monitor::fork_latencies() const {
  std::lock_guard lock(mutex_);
  return fork_latencies_;
}

std::vector<ForkPhases> Monitor::fork_phases() const {
  std::lock_guard lock(mutex_);
  return fork_phases_;
}

}  // namespace vmfork
