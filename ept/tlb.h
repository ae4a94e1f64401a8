// A vCPU's translation cache (its "TLB"): guest frame -> data frame and the
// permissions the walk allowed, tagged by EPTP. Touched only by the thread
// of the vCPU that owns it. Flushes are O(1): each context has a generation
// and an entry is valid only while its context's generation is unchanged.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/types.h"
#include "base/zero_pages.h"
#include "ept/access.h"
#include "ept/ept_entry.h"

namespace vmfork {

class TranslationCache {
 public:
  static constexpr size_t kEntries = 1024;
  static constexpr size_t kContexts = 4;
  static_assert((kEntries & (kEntries - 1)) == 0, "direct-mapped by the low bits of the gfn");

  struct Hit {
    FrameId frame;
    Access allowed;
  };

  // The cached translation of `gfn` under `eptp`, or nullptr.
  const Hit* lookup(Eptp eptp, Gfn gfn) const {
    const Entry& entry = entries_.read(gfn.value() & (kEntries - 1));
    const Context& context = contexts_[entry.context];
    if (entry.gfn != gfn.value() || entry.generation != context.generation ||
        context.eptp != eptp) {
      return nullptr;
    }
    return &entry.hit;
  }

  void insert(Eptp eptp, Gfn gfn, FrameId frame, Access allowed);

  // INVEPT single-context: forget every translation tagged with `eptp`.
  void flush_context(Eptp eptp);
  // INVEPT all-context.
  void flush_all();

  // Bumped by every flush, so caches derived from translations (a decoded-
  // instruction cache) can tell that they must be dropped too.
  uint64_t flushes() const { return flushes_; }

 private:
  // All-zero bytes are an empty entry: generation 0 matches no context.
  struct Entry {
    uint64_t gfn;
    uint64_t generation;
    Hit hit;
    uint8_t context;
  };
  struct Context {
    Eptp eptp;
    uint64_t generation = 1;  // entries start at generation 0: invalid
  };

  uint8_t context_for(Eptp eptp);

  // 40 KiB that a vCPU touches only as it translates (base/zero_pages.h).
  ZeroPagesArray<Entry> entries_{kEntries};
  std::array<Context, kContexts> contexts_{};
  uint8_t next_victim_ = 0;
  uint64_t flushes_ = 0;
};

}  // namespace vmfork
