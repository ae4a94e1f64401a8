// A memory snapshot: an immutable EPT root that shares every frame with the
// space it was taken from. Spawning a space from it is O(1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ept/result.h"
#include "ept/types.h"
#include "guestmm/accounting.h"

namespace vmfork {

class AddressSpace;
class GuestMemory;

class MemorySnapshot {
 public:
  ~MemorySnapshot();
  MemorySnapshot(const MemorySnapshot&) = delete;
  MemorySnapshot& operator=(const MemorySnapshot&) = delete;

  const std::string& name() const { return name_; }
  uint64_t ram_bytes() const { return ram_bytes_; }
  FrameId root() const { return root_; }

  // A new space that starts with this snapshot's contents.
  Result<std::unique_ptr<AddressSpace>> spawn(std::string name) const;
  SpaceAccounting account() const;

 private:
  friend class AddressSpace;
  MemorySnapshot(GuestMemory& memory, std::string name, uint64_t ram_bytes, FrameId root);

  GuestMemory& memory_;
  const std::string name_;
  const uint64_t ram_bytes_;
  const FrameId root_;
};

}  // namespace vmfork
