#include "vmm/soft/decode_cache.h"

#include <algorithm>

namespace vmfork::soft {

DecodeCache::DecodeCache() {
  code_pages_.reserve(kMaxCodePages);
}

const DecodedInstruction* DecodeCache::insert(uint64_t rip, const DecodedInstruction& insn) {
  const uint64_t first = rip >> 12;
  const uint64_t last = (rip + insn.length - 1) >> 12;
  if (code_pages_.size() + 2 > kMaxCodePages) clear();
  add_page(first);
  if (last != first) add_page(last);
  Entry& e = entries_.write(slot(rip));
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
