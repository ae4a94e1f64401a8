#include "vmm/soft/decode_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <type_traits>

namespace vmfork::soft {

DecodeCache::DecodeCache() {
  // Mapped memory holds Entry objects only if Entry is an implicit-lifetime
  // type (C++20): an aggregate with a trivial destructor.
  static_assert(std::is_aggregate_v<Entry> && std::is_trivially_destructible_v<Entry>);
  void* table = ::mmap(nullptr, kEntries * sizeof(Entry), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (table == MAP_FAILED) throw std::bad_alloc();
  entries_.reset(static_cast<Entry*>(table));
  code_pages_.reserve(kMaxCodePages);
}

void DecodeCache::Unmap::operator()(Entry* entries) const {
  ::munmap(entries, kEntries * sizeof(Entry));
}

const DecodedInstruction* DecodeCache::insert(uint64_t rip, const DecodedInstruction& insn) {
  const uint64_t first = rip >> 12;
  const uint64_t last = (rip + insn.length - 1) >> 12;
  if (code_pages_.size() + 2 > kMaxCodePages) clear();
  add_page(first);
  if (last != first) add_page(last);
  Entry& e = entries_[slot(rip)];
  e.rip = rip;
  e.epoch = epoch_;
  e.insn = insn;
  return &e.insn;
}

void DecodeCache::clear() {
  ++epoch_;
  code_pages_.clear();
  filter_ = {};
}

bool DecodeCache::holds_page(uint64_t page) const {
  return std::find(code_pages_.begin(), code_pages_.end(), page) != code_pages_.end();
}

void DecodeCache::add_page(uint64_t page) {
  if (holds_page(page)) return;
  code_pages_.push_back(page);
  filter_[(page >> 6) & 3] |= uint64_t{1} << (page & 63);
}

}  // namespace vmfork::soft
