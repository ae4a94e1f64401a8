#include "vmm/boot/page_tables.h"

#include <array>
#include <bit>
#include <span>

namespace vmfork {
namespace {

using Table = std::array<uint64_t, x86::kEntriesPerTable>;

constexpr uint64_t kNonLeaf =
    x86::kPtePresent | x86::kPteWritable | x86::kPteUser | x86::kPteAccessed;
constexpr uint64_t kLeaf2M = kNonLeaf | x86::kPteDirty | x86::kPtePageSize;

Result<void> write_table(AddressSpace& space, Gpa at, const Table& table) {
  // The guest reads its tables little-endian, as the host stores them.
  static_assert(std::endian::native == std::endian::little);
  return space.write(at, std::as_bytes(std::span(table)));
}

}  // namespace

Result<void> write_identity_page_tables(AddressSpace& space, const GuestLayout& layout) {
  const PageTablePlan plan = PageTablePlan::for_ram(layout.ram_bytes());

  Table pml4{};
  for (uint64_t i = 0; i < plan.pdpts; ++i)
    pml4[i] = plan.pdpt(i).value() | kNonLeaf;
  if (Result<void> written = write_table(space, plan.pml4(), pml4); !written) return written;

  for (uint64_t p = 0; p < plan.pdpts; ++p) {
    Table pdpt{};
    for (uint64_t i = 0; i < x86::kEntriesPerTable; ++i) {
      const uint64_t pd = p * x86::kEntriesPerTable + i;
      if (pd < plan.pds) pdpt[i] = plan.pd(pd).value() | kNonLeaf;
    }
    if (Result<void> written = write_table(space, plan.pdpt(p), pdpt); !written) return written;
  }

  // RAM is a multiple of 2 MiB (GuestLayout), so every leaf maps RAM only.
  const uint64_t large_pages = layout.ram_bytes() / x86::kLargePageSize;
  for (uint64_t d = 0; d < plan.pds; ++d) {
    Table pd{};
    for (uint64_t i = 0; i < x86::kEntriesPerTable; ++i) {
      const uint64_t page = d * x86::kEntriesPerTable + i;
      if (page < large_pages) pd[i] = page * x86::kLargePageSize | kLeaf2M;
    }
    if (Result<void> written = write_table(space, plan.pd(d), pd); !written) return written;
  }
  return Ok{};
}

}  // namespace vmfork
