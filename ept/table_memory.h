// The memory EPT tables live in, as ept/ sees it: frames with an atomic
// reference count and a lock each. guestmm/ implements it over the frame
// pool; tests implement it over plain arrays, so ept/ is testable alone.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "base/waiter.h"

namespace vmfork {

enum class FrameKind : uint8_t { kData, kTable };

class TableMemory {
 public:
  virtual ~TableMemory() = default;

  // The 512 entries of a table frame.
  virtual std::atomic<uint64_t>* entries(FrameId table) const = 0;
  // A zeroed table frame with a reference count of 1. When memory is short
  // it may wait for reclamation, through `waiter` (the caller's).
  virtual Result<FrameId> allocate_table(Waiter& waiter) = 0;

  virtual void get(FrameId frame) = 0;
  // Drops one reference; returns true when it was the last one. The caller
  // then releases what the frame references and retires it.
  virtual bool put(FrameId frame) = 0;
  virtual uint64_t refcount(FrameId frame) const = 0;
  // Hands a frame with no references to reclamation: it is reused only after
  // every vCPU that could still walk through it has passed a quiescent point.
  virtual void retire(FrameId frame, FrameKind kind) = 0;

  // The per-frame lock. Taken in the order of lock_order.h.
  virtual void lock(FrameId frame, Waiter& waiter) = 0;
  virtual void unlock(FrameId frame) = 0;
};

}  // namespace vmfork
