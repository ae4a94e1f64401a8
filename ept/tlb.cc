#include "ept/tlb.h"

namespace vmfork {

uint8_t TranslationCache::context_for(Eptp eptp) {
  for (size_t i = 0; i < kContexts; ++i) {
    if (contexts_[i].eptp == eptp) return static_cast<uint8_t>(i);
  }
  // Evict a context: bumping its generation invalidates all its entries.
  const uint8_t victim = next_victim_;
  next_victim_ = static_cast<uint8_t>((next_victim_ + 1) % kContexts);
  contexts_[victim].eptp = eptp;
  ++contexts_[victim].generation;
  return victim;
}

void TranslationCache::insert(Eptp eptp, Gfn gfn, FrameId frame, Access allowed) {
  const uint8_t context = context_for(eptp);
  Entry& entry = entries_.write(gfn.value() & (kEntries - 1));
  entry.gfn = gfn.value();
  entry.generation = contexts_[context].generation;
  entry.hit = Hit{frame, allowed};
  entry.context = context;
}

void TranslationCache::flush_context(Eptp eptp) {
  for (Context& context : contexts_) {
    if (context.eptp == eptp) ++context.generation;
  }
  ++flushes_;
}

void TranslationCache::flush_all() {
  for (Context& context : contexts_)
    ++context.generation;
  ++flushes_;
}

}  // namespace vmfork
