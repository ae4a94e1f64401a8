// The decoded-instruction cache of one vCPU, keyed by guest-physical RIP. Direct-mapped; cleared
// in O(1) by an epoch. It remembers which pages hold cached code so that a guest write into one of
// them (self-modifying code, a loader reusing a page) drops the cache before the next fetch.
// Writes by other vCPUs are not seen (cross-modifying code is outside the supported subset);
// remapped pages are covered by the environment's flush generation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/zero_pages.h"
#include "vmm/soft/decoded_instruction.h"

namespace vmfork::soft {

class DecodeCache {
 public:
  DecodeCache();

  const DecodedInstruction* find(uint64_t rip) const {
    const Entry& e = entries_.read(slot(rip));
    return e.epoch == epoch_ && e.rip == rip ? &e.insn : nullptr;
  }
  // Caches `insn`, decoded from the bytes at [rip, rip + insn.length).
  const DecodedInstruction* insert(uint64_t rip, const DecodedInstruction& insn);
  // Drops every entry.
  void clear();
  // True when a write to [gpa, gpa + size) may change cached code (then call clear()).
  bool holds_code(uint64_t gpa, uint64_t size) const {
    const uint64_t first = gpa >> 12;
    const uint64_t last = (gpa + size - 1) >> 12;
    return (filter_bit(first) && holds_page(first)) ||
           (last != first && filter_bit(last) && holds_page(last));
  }

 private:
  static constexpr size_t kEntries = 4096;
  static constexpr size_t kMaxCodePages = 64;  // more and the cache starts over

  struct Entry {
    uint64_t rip = 0;
    uint64_t epoch = 0;  // valid when equal to the cache's epoch_ (which starts at 1)
    DecodedInstruction insn;
  };

  static size_t slot(uint64_t rip) { return (rip ^ (rip >> 12)) & (kEntries - 1); }
  bool filter_bit(uint64_t page) const { return (filter_[(page >> 6) & 3] >> (page & 63)) & 1; }
  bool holds_page(uint64_t page) const;
  void add_page(uint64_t page);

  // Zero is "no entry" (epoch 0): half a megabyte that a vCPU (and so every
  // clone) touches only as code gets cached (base/zero_pages.h). Not calloc:
  // once a block this size has been freed, glibc raises its mmap threshold
  // and serves the next one from a heap, zeroed by memset on the fork's
  // request path.
  ZeroPagesArray<Entry> entries_{kEntries};
  uint64_t epoch_ = 1;
  std::vector<uint64_t> code_pages_;  // page numbers of cached code, at most kMaxCodePages
  std::array<uint64_t, 4> filter_{};  // a bit per (page mod 256): cheap "not code" for writes
};

}  // namespace vmfork::soft
