#include "vmm/soft/guest_access.h"

#include <string>

#include "vmm/hypervisor/guest_word.h"

namespace vmfork::soft {

namespace {

// The two parts of an access that crosses a page: each byte once, with relaxed atomics. x86 does
// not make such an access atomic, but it writes every byte once, and so must we (see
// guest_word.h for what a second store of the same bytes can undo).
void copy_guest_bytes(void* to, const void* from, size_t bytes) {
  auto* target = static_cast<uint8_t*>(to);
  const auto* source = static_cast<const uint8_t*>(from);
  for (size_t i = 0; i < bytes; ++i)
    __atomic_store_n(&target[i], __atomic_load_n(&source[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

}  // namespace

Result<std::byte*> GuestAccess::page_slow(uint64_t gpa, Access access) {
  const uint64_t base = gpa & ~uint64_t{0xfff};
  Result<std::byte*> host = env_->translate(base, access);
  if (!host) return host.error();
  const TlbEntry entry{base >> 12, epoch_, *host};
  read_tlb_[entry.page & (kTlbEntries - 1)] = entry;  // a writable page is readable too
  if (access == Access::kWrite) write_tlb_[entry.page & (kTlbEntries - 1)] = entry;
  return *host + (gpa & 0xfff);
}

Result<uint64_t> GuestAccess::read(uint64_t gpa, unsigned size) {
  uint64_t value = 0;
  const uint64_t in_page = 0x1000 - (gpa & 0xfff);
  Result<std::byte*> first = page(gpa, Access::kRead);
  if (!first) return first.error();
  if (size <= in_page) return load_guest_word(*first, size);
  Result<std::byte*> second = page(gpa + in_page, Access::kRead);
  if (!second) return second.error();
  auto* bytes = reinterpret_cast<std::byte*>(&value);
  copy_guest_bytes(bytes, *first, in_page);
  copy_guest_bytes(bytes + in_page, *second, size - in_page);
  return value;
}

Result<void> GuestAccess::write(uint64_t gpa, unsigned size, uint64_t value) {
  const uint64_t in_page = 0x1000 - (gpa & 0xfff);
  Result<std::byte*> first = page(gpa, Access::kWrite);
  if (!first) return first.error();
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  if (size <= in_page) {
    store_guest_word(*first, size, value);
  } else {
    // Translate both pages before writing either: a fault leaves memory unchanged.
    Result<std::byte*> second = page(gpa + in_page, Access::kWrite);
    if (!second) return second.error();
    copy_guest_bytes(*first, bytes, in_page);
    copy_guest_bytes(*second, bytes + in_page, size - in_page);
  }
  note_write(gpa, size);
  return Ok{};
}

Result<OperandBytes> GuestAccess::exclusive_operand(uint64_t gpa, unsigned size) {
  const uint64_t in_page = 0x1000 - (gpa & 0xfff);
  const unsigned first_size = size <= in_page ? size : static_cast<unsigned>(in_page);
  for (;;) {
    // Nothing translated before counts: the section began after it.
    invalidate();
    const uint64_t flushes = env_->flush_generation();
    Result<std::byte*> first = page(gpa, Access::kWrite);
    if (!first) return first.error();
    std::byte* second = nullptr;
    if (first_size < size) {
      Result<std::byte*> rest = page(gpa + first_size, Access::kWrite);
      if (!rest) return rest.error();
      second = *rest;
    }
    if (env_->flush_generation() == flushes) return OperandBytes{*first, second, first_size, size};
    // A fault (our own COW break of one of the pages) flushed our translations: translate both
    // again, which no longer faults.
  }
}

uint64_t OperandBytes::load() const {
  uint64_t value = 0;
  auto* bytes = reinterpret_cast<std::byte*>(&value);
  copy_guest_bytes(bytes, first, first_size);
  if (second != nullptr) copy_guest_bytes(bytes + first_size, second, size - first_size);
  return value;
}

void OperandBytes::store(uint64_t value) const {
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  copy_guest_bytes(first, bytes, first_size);
  if (second != nullptr) copy_guest_bytes(second, bytes + first_size, size - first_size);
}

}  // namespace vmfork::soft
