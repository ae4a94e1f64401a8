// The daemon's view of its VMs: every VM the monitor launched (originals,
// clones forked from inside or outside, restored clones) and the ones built
// but held back (created or loaded paused), with what the API reports of
// them after they end, until DELETE. It listens to the monitor, writes the
// event journal (GET /events) and keeps the latency histograms (GET
// /metrics).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vmm/api/latency_histogram.h"
#include "vmm/vm/journal.h"
#include "vmm/vm/monitor_listener.h"
#include "vmm/vm/vm.h"

namespace vmfork::api {

enum class VmState : uint8_t {
  kHeld,  // built, never started (created or loaded paused)
  kRunning,
  kPaused,  // started, every vCPU parked (PATCH Paused)
  kExited,  // ended and destroyed; its figures are kept until DELETE
};
const char* to_string(VmState state);

struct VmRecord {
  std::string id;
  VmState state = VmState::kHeld;
  Engine engine = Engine::kSoft;
  uint32_t vcpus = 0;
  uint64_t ram_bytes = 0;
  std::optional<Vm::Lineage> lineage;
  std::optional<uint32_t> status;      // once exited
  std::optional<std::string> error;    // why it failed
  std::optional<uint64_t> latency_ns;  // a clone's first instruction after its request
  std::shared_ptr<Journal> console;
  std::optional<VmEnded> ended;  // its figures when it ended
};

struct Histograms {
  LatencyHistogram fork;            // request to a forked clone's first instruction
  LatencyHistogram restore;         // request to a restored clone's first instruction
  LatencyHistogram snapshot_pause;  // the vCPUs stopped
  LatencyHistogram snapshot_write;  // the files written
};

class VmTable final : public MonitorListener {
 public:
  // The event journal keeps this much (older events are only in the log).
  static constexpr size_t kEventBytes = 1 << 20;

  VmTable() : events_(std::make_shared<Journal>(kEventBytes)) {}

  // --- MonitorListener ---
  void vm_launched(const VmLaunched& launched) override;
  void vm_first_instruction(const std::string& vm, uint64_t latency_ns) override;
  void vm_failed(const std::string& vm, const std::string& message) override;
  void vm_ended(const VmEnded& ended) override;
  void vm_forked(const std::string& vm, const std::vector<std::string>& clones) override;
  void vm_snapshotted(const SnapshotReport& report) override;

  // --- VMs built but not started. ---
  void hold(std::unique_ptr<Vm> vm, const std::optional<std::string>& event);
  // The held VM `id` taken out (to launch or destroy it); none if not held.
  std::unique_ptr<Vm> take_held(const std::string& id);

  std::optional<VmRecord> find(const std::string& id) const;
  std::vector<VmRecord> all() const;
  void set_paused(const std::string& id, bool paused);
  // Forgets `id` (DELETE).
  void erase(const std::string& id);
  // Each clone's first-instruction latency, waiting up to `patience` for
  // clones that have not run yet (none for a clone that ended first or
  // has not run by then).
  std::vector<std::optional<uint64_t>> wait_first_instructions(
      const std::vector<std::string>& clones, std::chrono::milliseconds patience) const;

  // Appends an event: {"seq", "time_ns", "event", "vm", ...fields}.
  void emit(const std::string& event, const std::string& vm, nlohmann::json fields = {});
  const std::shared_ptr<Journal>& events() const { return events_; }
  Histograms histograms() const;
  // Every held VM destroyed (the daemon stops).
  void drop_held();

 private:
  void emit_locked(const std::string& event, const std::string& vm, nlohmann::json fields);

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;          // a latency arrived or a VM ended
  std::map<std::string, VmRecord> records_;          // guarded by mutex_
  std::map<std::string, std::unique_ptr<Vm>> held_;  // guarded by mutex_
  Histograms histograms_;                            // guarded by mutex_
  uint64_t next_seq_ = 0;                            // guarded by mutex_
  const std::shared_ptr<Journal> events_;
};

}  // namespace vmfork::api
