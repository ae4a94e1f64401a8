// config.json of a snapshot directory: what the user set, engine-neutral and
// readable by people. The engine is the one the snapshot was taken on, for
// information: a snapshot restores on either engine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/result.h"
#include "guestmm/reclaimer.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/boot/platform.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork {

// A VM cannot have more vCPUs than the monitor runs at once (one reclaimer
// slot each), so neither can a snapshot.
inline constexpr uint32_t kMaxSnapshotVcpus = Reclaimer::kMaxParticipants;

struct SnapshotConfig {
  uint32_t vcpus = 1;
  uint64_t ram_bytes = 0;
  std::string guest;  // the guest ELF's path, or empty
  Engine engine = Engine::kSoft;
  // kPc: a Linux guest's, which restores only on the kvm engine. config.json
  // written before PC guests had snapshots has no "platform": freestanding.
  Platform platform = Platform::kFreestanding;
  friend bool operator==(const SnapshotConfig&, const SnapshotConfig&) = default;
};

// Refuses what GuestLayout::create (create_pc for a PC) refuses
// (vmm/boot/guest_layout.h), and more vCPUs than kMaxSnapshotVcpus; `what`
// starts the message.
Result<void> check_config(const SnapshotConfig& config, const std::string& what);
// The layout of the snapshot's VM: GuestLayout::create or create_pc.
Result<GuestLayout> snapshot_layout(const SnapshotConfig& config);

// The bytes of config.json (its checksum in state.json is over these).
std::string config_json_text(const SnapshotConfig& config);
// Parses and checks config.json's text; `file` names it in errors.
Result<SnapshotConfig> parse_config_json(const std::filesystem::path& file,
                                         const std::string& text);

}  // namespace vmfork
