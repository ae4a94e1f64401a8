// What a snapshot keeps besides its configuration and its memory: every
// vCPU's state, who asked for it, which snapshot it is a diff of, and a PC
// guest's interrupt controllers, timer, clock and legacy ports.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "vmm/boot/platform.h"
#include "vmm/devices/pc_ports.h"
#include "vmm/hypervisor/cpu_state.h"
#include "vmm/hypervisor/vcpu.h"

namespace vmfork {

// What a clone of a PC guest (Platform::kPc) takes beyond its vCPUs and
// memory: the engine's interrupt controllers, timer and clock, and the
// legacy ports' registers.
struct PlatformSnapshot {
  EngineBlob chips;  // Machine::platform_state()
  PcPorts::State ports;
  friend bool operator==(const PlatformSnapshot&, const PlatformSnapshot&) = default;
};

struct SnapshotState {
  std::vector<VcpuSnapshot> vcpus;  // one per vCPU, in index order
  // The vCPU that asked for the snapshot through port 0x511 (DESIGN section
  // 8), which resumes with RAX = k in clone k; none when taken from outside.
  std::optional<uint32_t> requester;
  // The snapshot directory this one is a diff of: its pages show through
  // wherever this one stores none. Absolute.
  std::optional<std::filesystem::path> parent;
  // A PC guest's (Platform::kPc); none for a freestanding guest, whose only
  // device, the console, has no state.
  std::optional<PlatformSnapshot> platform;

  // The guest's kind, which a PlatformSnapshot's presence tells.
  Platform platform_kind() const { return platform ? Platform::kPc : Platform::kFreestanding; }
};

}  // namespace vmfork
