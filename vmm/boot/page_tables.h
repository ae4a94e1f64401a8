// The guest's own page tables (DESIGN section 8: paging on, guest RAM
// identity-mapped): 4-level x86-64 tables with 2 MiB pages, one PML4, one
// PDPT per 512 GiB and one PD per GiB, laid out contiguously from kPml4Gpa.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/boot/monitor_area.h"
#include "vmm/boot/x86_bits.h"

namespace vmfork {

struct PageTablePlan {
  uint64_t pdpts = 0;  // one per 512 GiB of RAM
  uint64_t pds = 0;    // one per GiB of RAM

  static constexpr PageTablePlan for_ram(uint64_t ram_bytes) {
    return {.pdpts = (ram_bytes + x86::kPdptSpan - 1) / x86::kPdptSpan,
            .pds = (ram_bytes + x86::kPdSpan - 1) / x86::kPdSpan};
  }
  constexpr uint64_t table_count() const { return 1 + pdpts + pds; }
  constexpr Gpa pml4() const { return kPml4Gpa; }
  constexpr Gpa pdpt(uint64_t i) const { return kPml4Gpa + (1 + i) * kPageSize; }
  constexpr Gpa pd(uint64_t i) const { return kPml4Gpa + (1 + pdpts + i) * kPageSize; }
  // First byte after the last table.
  constexpr Gpa end() const { return kPml4Gpa + table_count() * kPageSize; }
};

static_assert(PageTablePlan::for_ram(kMaxRamBytes).end() <= kPageTablesEnd,
              "the identity map of the largest RAM must fit below 1 MiB");

// Writes every table page whole (zeros included), so a space that held
// anything before ends up with exactly these tables. A, and D in the leaves,
// are preset so that the guest's walks never write the tables: after a fork
// the clones keep sharing them instead of each copying them on first use.
Result<void> write_identity_page_tables(AddressSpace& space, const GuestLayout& layout);

}  // namespace vmfork
