// What a snapshot keeps besides its configuration and its memory: every
// vCPU's state, who asked for it, and which snapshot it is a diff of.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "vmm/hypervisor/vcpu.h"

namespace vmfork {

struct SnapshotState {
  std::vector<VcpuSnapshot> vcpus;  // one per vCPU, in index order
  // The vCPU that asked for the snapshot through port 0x511 (DESIGN section
  // 8), which resumes with RAX = k in clone k; none when taken from outside.
  std::optional<uint32_t> requester;
  // The snapshot directory this one is a diff of: its pages show through
  // wherever this one stores none. Absolute.
  std::optional<std::filesystem::path> parent;
  // Devices: the console (the only device) has no state.
};

}  // namespace vmfork
