// Guest memory as the interpreter sees it: every access goes through CpuEnvironment::translate,
// one 4 KiB page at a time, with a small direct-mapped cache of this vCPU's translations that is
// invalidated at every check() (the environment's pointers are valid only until then).
// Accesses that cross a page are split. A locked access that crosses a page is made atomic by the
// interpreter's exclusive section, for which exclusive_operand() translates both pages.
// Linear addresses are guest-physical: guests run identity-mapped (DESIGN.md section 8), so the
// interpreter performs no guest page walk.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "ept/access.h"
#include "vmm/soft/cpu_environment.h"
#include "vmm/soft/decode_cache.h"

namespace vmfork::soft {

// The host bytes of a guest operand of 1 to 8 bytes: `first_size` bytes at `first`, the rest (if
// it crosses a page) at `second`. Loads and stores go byte by byte: for an exclusive section
// only, where no other vCPU of the VM runs.
struct OperandBytes {
  std::byte* first = nullptr;
  std::byte* second = nullptr;  // null when the operand stays within one page
  unsigned first_size = 0;
  unsigned size = 0;

  uint64_t load() const;
  void store(uint64_t value) const;
};

class GuestAccess {
 public:
  explicit GuestAccess(DecodeCache& code) : code_(code) {}

  void set_environment(CpuEnvironment& env) {
    env_ = &env;
    invalidate();
  }
  // Forgets every cached translation (after check()).
  void invalidate() { ++epoch_; }

  // Host pointer to `gpa` for `access`; valid for the rest of gpa's page until invalidate().
  Result<std::byte*> page(uint64_t gpa, Access access) {
    const uint64_t page_number = gpa >> 12;
    Tlb& tlb = access == Access::kWrite ? write_tlb_ : read_tlb_;
    const TlbEntry& e = tlb[page_number & (kTlbEntries - 1)];
    if (e.epoch == epoch_ && e.page == page_number) return e.host + (gpa & 0xfff);
    return page_slow(gpa, access);
  }

  // Little-endian load/store of 1, 2, 4 or 8 bytes (split at a page boundary when needed).
  Result<uint64_t> read(uint64_t gpa, unsigned size);
  Result<void> write(uint64_t gpa, unsigned size, uint64_t value);
  // Writable host bytes of a locked operand, inside an exclusive section: both pages are
  // translated for writing (which breaks their COW sharing), then translated again until no
  // flush of this vCPU's translations came in between, so both pointers are current. They stay
  // valid until the section ends: see Interpreter::locked_exclusive.
  Result<OperandBytes> exclusive_operand(uint64_t gpa, unsigned size);
  // Tells the decoded-instruction cache about a write of [gpa, gpa + size) done through a pointer
  // from page() or exclusive_operand().
  void note_write(uint64_t gpa, uint64_t size) {
    if (code_.holds_code(gpa, size)) code_.clear();
  }

 private:
  static constexpr size_t kTlbEntries = 64;
  struct TlbEntry {
    uint64_t page = 0;
    uint64_t epoch = 0;
    std::byte* host = nullptr;  // the page's first byte
  };
  using Tlb = std::array<TlbEntry, kTlbEntries>;

  Result<std::byte*> page_slow(uint64_t gpa, Access access);

  DecodeCache& code_;
  CpuEnvironment* env_ = nullptr;
  uint64_t epoch_ = 1;
  Tlb read_tlb_{};   // read (and execute) translations; write translations are entered too
  Tlb write_tlb_{};  // write translations
};

}  // namespace vmfork::soft
