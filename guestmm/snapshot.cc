#include "guestmm/snapshot.h"

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"

namespace vmfork {

MemorySnapshot::MemorySnapshot(GuestMemory& memory, std::string name, uint64_t ram_bytes,
                               FrameId root, std::shared_ptr<PageCache> cache)
    : memory_(memory),
      name_(std::move(name)),
      ram_bytes_(ram_bytes),
      cache_(std::move(cache)),
      root_(root) {
  memory_.register_root(root_);
}

MemorySnapshot::~MemorySnapshot() {
  memory_.unregister_root(root_);
  memory_.tree().release_root(root_);
}

Result<std::unique_ptr<AddressSpace>> MemorySnapshot::spawn(std::string name) const {
  // The snapshot's root entries are already read-only and no vCPU runs on
  // it, so cloning it needs no flush.
  Result<FrameId> root = memory_.tree().clone(root_);
  if (!root) return root.error();
  return std::unique_ptr<AddressSpace>(
      new AddressSpace(memory_, std::move(name), ram_bytes_, *root, cache_));
}

SpaceAccounting MemorySnapshot::account() const {
  HostWalkGuard guard(memory_.reclaimer());
  return account_tree(memory_, root_);
}

}  // namespace vmfork
