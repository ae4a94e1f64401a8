// A memory snapshot: an immutable EPT root that shares every frame with the
// space it was taken from. Spawning a space from it is O(1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/accounting.h"

namespace vmfork {

class AddressSpace;
class GuestMemory;
class PageCache;

// Which pages a snapshot file stores (vmm/snapshot writes them).
enum class PagesToStore : uint8_t {
  // Every page with data: mapped pages that are not all zero, and in a
  // restored snapshot the pages of its page cache never touched.
  kAll,
  // A diff against the page cache's source: only the pages no longer
  // shared with it (mapped to a frame of their own, zero or not).
  kNotShared,
};
using VisitStoredPage = std::function<Result<void>(Gfn gfn, const std::byte* page)>;

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
  // The restored RAM its untouched pages come from, or null.
  const std::shared_ptr<PageCache>& page_cache() const { return cache_; }
  // Calls visit(gfn, page) in gfn order for every page `which` names; page
  // is 4 KiB, valid during the call. The frames are frozen (COW-shared with
  // the space it was taken from, which runs on). Stops at visit's first
  // error, or at the page cache's.
  Result<void> for_each_page(PagesToStore which, const VisitStoredPage& visit) const;
  SpaceAccounting account() const;

 private:
  friend class AddressSpace;
  MemorySnapshot(GuestMemory& memory, std::string name, uint64_t ram_bytes, FrameId root,
                 std::shared_ptr<PageCache> cache);

  GuestMemory& memory_;
  const std::string name_;
  const uint64_t ram_bytes_;
  const std::shared_ptr<PageCache> cache_;
  const FrameId root_;
};

}  // namespace vmfork
