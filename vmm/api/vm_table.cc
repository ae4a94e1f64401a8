#include "vmm/api/vm_table.h"

#include "vmm/clock.h"

namespace vmfork::api {

const char* to_string(VmState state) {
  switch (state) {
    case VmState::kHeld:
      return "Paused";  // as Firecracker's "Not started" reads to a user: it runs on resume
    case VmState::kRunning:
      return "Running";
    case VmState::kPaused:
      return "Paused";
    case VmState::kExited:
      return "Exited";
  }
  return "Unknown";
}

void VmTable::vm_launched(const VmLaunched& launched) {
  std::lock_guard lock(mutex_);
  VmRecord& record = records_[launched.vm];
  const bool was_held = record.state == VmState::kHeld && !record.id.empty();
  record.id = launched.vm;
  record.state = VmState::kRunning;
  record.engine = launched.engine;
  record.vcpus = launched.vcpus;
  record.ram_bytes = launched.ram_bytes;
  record.lineage = launched.lineage;
  record.console = launched.console;
  if (was_held) {
    emit_locked("resumed", launched.vm, {});
    return;
  }
  nlohmann::json fields = {{"engine", vmfork::to_string(launched.engine)},
                           {"vcpus", launched.vcpus},
                           {"mem_bytes", launched.ram_bytes}};
  if (launched.lineage) {
    fields["parent"] = launched.lineage->parent;
    fields["clone_id"] = launched.lineage->clone_id;
  }
  emit_locked("created", launched.vm, std::move(fields));
}

void VmTable::vm_first_instruction(const std::string& vm, uint64_t latency_ns) {
  std::lock_guard lock(mutex_);
  auto found = records_.find(vm);
  if (found == records_.end()) return;
  found->second.latency_ns = latency_ns;
  // A clone of a VM the table knows was forked; one of a snapshot directory restored.
  const std::optional<Vm::Lineage>& lineage = found->second.lineage;
  const bool forked = lineage && records_.count(lineage->parent) != 0;
  (forked ? histograms_.fork : histograms_.restore).add(latency_ns);
  changed_.notify_all();
}

void VmTable::vm_failed(const std::string& vm, const std::string& message) {
  std::lock_guard lock(mutex_);
  auto found = records_.find(vm);
  if (found != records_.end() && !found->second.error) found->second.error = message;
  emit_locked("failed", vm, {{"error", message}});
}

void VmTable::vm_ended(const VmEnded& ended) {
  std::lock_guard lock(mutex_);
  auto found = records_.find(ended.vm);
  if (found != records_.end()) {
    found->second.state = VmState::kExited;
    found->second.status = ended.status;
    found->second.ended = ended;
  }
  emit_locked("exited", ended.vm, {{"status", ended.status}});
  changed_.notify_all();
}

void VmTable::vm_forked(const std::string& vm, const std::vector<std::string>& clones) {
  std::lock_guard lock(mutex_);
  emit_locked("forked", vm, {{"clones", clones}});
}

void VmTable::vm_snapshotted(const SnapshotReport& report) {
  std::lock_guard lock(mutex_);
  histograms_.snapshot_pause.add(report.pause_ns);
  histograms_.snapshot_write.add(report.write_ns);
  emit_locked("snapshotted", report.vm,
              {{"path", report.dir.string()},
               {"pause_ns", report.pause_ns},
               {"write_ns", report.write_ns},
               {"pages", report.pages},
               {"diff", report.diff}});
}

void VmTable::hold(std::unique_ptr<Vm> vm, const std::optional<std::string>& event) {
  std::lock_guard lock(mutex_);
  VmRecord& record = records_[vm->name()];
  record.id = vm->name();
  record.state = VmState::kHeld;
  record.engine = vm->engine();
  record.vcpus = vm->vcpu_count();
  record.ram_bytes = vm->layout().ram_bytes();
  record.lineage = vm->lineage();
  record.console = vm->console_journal();
  if (event) {
    nlohmann::json fields = {{"engine", vmfork::to_string(record.engine)},
                             {"vcpus", record.vcpus},
                             {"mem_bytes", record.ram_bytes},
                             {"paused", true}};
    if (record.lineage) {
      fields["parent"] = record.lineage->parent;
      fields["clone_id"] = record.lineage->clone_id;
    }
    emit_locked(*event, record.id, std::move(fields));
  }
  held_[record.id] = std::move(vm);
}

std::unique_ptr<Vm> VmTable::take_held(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto found = held_.find(id);
  if (found == held_.end()) return nullptr;
  std::unique_ptr<Vm> vm = std::move(found->second);
  held_.erase(found);
  return vm;
}

std::optional<VmRecord> VmTable::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto found = records_.find(id);
  if (found == records_.end()) return std::nullopt;
  return found->second;
}

std::vector<VmRecord> VmTable::all() const {
  std::lock_guard lock(mutex_);
  std::vector<VmRecord> result;
  result.reserve(records_.size());
  for (const auto& [id, record] : records_)
    result.push_back(record);
  return result;
}

void VmTable::set_paused(const std::string& id, bool paused) {
  std::lock_guard lock(mutex_);
  auto found = records_.find(id);
  if (found == records_.end() || found->second.state == VmState::kExited) return;
  found->second.state = paused ? VmState::kPaused : VmState::kRunning;
  emit_locked(paused ? "paused" : "resumed", id, {});
}

void VmTable::erase(const std::string& id) {
  std::lock_guard lock(mutex_);
  records_.erase(id);
  emit_locked("deleted", id, {});
}

std::vector<std::optional<uint64_t>> VmTable::wait_first_instructions(
    const std::vector<std::string>& clones, std::chrono::milliseconds patience) const {
  std::unique_lock lock(mutex_);
  const auto settled = [this, &clones] {
    for (const std::string& clone : clones) {
      auto found = records_.find(clone);
      if (found == records_.end()) continue;
      if (!found->second.latency_ns && found->second.state != VmState::kExited) return false;
    }
    return true;
  };
  changed_.wait_for(lock, patience, settled);
  std::vector<std::optional<uint64_t>> result;
  for (const std::string& clone : clones) {
    auto found = records_.find(clone);
    result.push_back(found == records_.end() ? std::nullopt : found->second.latency_ns);
  }
  return result;
}

void VmTable::emit(const std::string& event, const std::string& vm, nlohmann::json fields) {
  std::lock_guard lock(mutex_);
  emit_locked(event, vm, std::move(fields));
}

void VmTable::emit_locked(const std::string& event, const std::string& vm, nlohmann::json fields) {
  nlohmann::json line = {{"seq", next_seq_++}, {"time_ns", now_ns()}, {"event", event}, {"vm", vm}};
  if (fields.is_object()) line.update(fields);
  // Under our lock: the journal gets the lines in seq order.
  events_->append(line.dump() + "\n");
}

Histograms VmTable::histograms() const {
  std::lock_guard lock(mutex_);
  return histograms_;
}

void VmTable::drop_held() {
  std::map<std::string, std::unique_ptr<Vm>> held;
  {
    std::lock_guard lock(mutex_);
    held.swap(held_);
  }
  // Destroyed without our lock (their threads are joined).
}

}  // namespace vmfork::api
