// The identity map, walked the way the CPU walks it from CR3 over the bytes
// read back from guest memory: every address of RAM translates to itself,
// writable, in 2 MiB pages; nothing beyond RAM is mapped; the tables fit below
// 1 MiB for the largest RAM.
#include "vmm/boot/page_tables.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "boot_test_support.h"

namespace vmfork::testing {
namespace {

void expect_identity(const AddressSpace& space, uint64_t address) {
  SCOPED_TRACE(::testing::Message() << std::hex << "address 0x" << address);
  const std::optional<Translation> t = translate(space, kPml4Gpa.value(), address);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->physical, address);
  EXPECT_EQ(t->page_size, 2 * kMiB);
  EXPECT_TRUE(t->writable);
}

TEST(PageTables, SmallRamIsIdentityMapped) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 32 * kMiB));
  const GuestLayout layout = unwrap(GuestLayout::create(32 * kMiB, 1));
  unwrap(write_identity_page_tables(*space, layout));
  for (const uint64_t a : {uint64_t{0}, uint64_t{0x1000}, kMiB, 2 * kMiB - 1, 2 * kMiB,
                           17 * kMiB + 0x123, 32 * kMiB - 1}) {
    expect_identity(*space, a);
  }
  EXPECT_FALSE(translate(*space, kPml4Gpa.value(), 32 * kMiB).has_value());
  EXPECT_FALSE(translate(*space, kPml4Gpa.value(), kGiB).has_value());
  EXPECT_FALSE(translate(*space, kPml4Gpa.value(), uint64_t{1} << 40).has_value());
}

TEST(PageTables, RamOverSeveralGiBUsesOnePdPerGiB) {
  constexpr uint64_t kRam = 3 * kGiB + 4 * kMiB;
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  const GuestLayout layout = unwrap(GuestLayout::create(kRam, 2));
  unwrap(write_identity_page_tables(*space, layout));
  for (const uint64_t a : {uint64_t{0}, kGiB - 1, kGiB, 2 * kGiB + 0x5000, 3 * kGiB, kRam - 1}) {
    expect_identity(*space, a);
  }
  EXPECT_FALSE(translate(*space, kPml4Gpa.value(), kRam).has_value());
  const PageTablePlan plan = PageTablePlan::for_ram(kRam);
  EXPECT_EQ(plan.pdpts, 1u);
  EXPECT_EQ(plan.pds, 4u);
}

TEST(PageTables, LargestRamFitsBelowOneMiB) {
  const PageTablePlan plan = PageTablePlan::for_ram(kMaxRamBytes);
  EXPECT_EQ(plan.table_count(), 1u + 1u + 64u);
  EXPECT_LE(plan.end(), Gpa(kMiB));

  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kMaxRamBytes));
  const GuestLayout layout = unwrap(GuestLayout::create(kMaxRamBytes, 1));
  unwrap(write_identity_page_tables(*space, layout));
  for (const uint64_t a : {uint64_t{0}, 40 * kGiB + 0x1234, kMaxRamBytes - 1}) {
    expect_identity(*space, a);
  }
  EXPECT_FALSE(translate(*space, kPml4Gpa.value(), kMaxRamBytes).has_value());
}

TEST(PageTables, EntriesArePresetAccessedDirtyAndUser) {
  // Accessed and dirty: the guest's walks never write the tables and clones
  // keep sharing them. U/S: PVM runs the guest natively only then.
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  unwrap(write_identity_page_tables(*space, unwrap(GuestLayout::create(4 * kMiB, 1))));
  const PageTablePlan plan = PageTablePlan::for_ram(4 * kMiB);
  EXPECT_EQ(read_u64(*space, plan.pml4()), plan.pdpt(0).value() | 0x27);
  EXPECT_EQ(read_u64(*space, plan.pdpt(0)), plan.pd(0).value() | 0x27);
  EXPECT_EQ(read_u64(*space, plan.pd(0)), 0xe7u);
  EXPECT_EQ(read_u64(*space, plan.pd(0) + 8), 2 * kMiB | 0xe7);
  EXPECT_EQ(read_u64(*space, plan.pd(0) + 16), 0u);
}

TEST(PageTables, StaleEntriesOfAUsedSpaceAreCleared) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  const PageTablePlan plan = PageTablePlan::for_ram(4 * kMiB);
  write_u64(*space, plan.pd(0) + 8 * 100, 0xdead'b001);  // a stray present entry
  unwrap(write_identity_page_tables(*space, unwrap(GuestLayout::create(4 * kMiB, 1))));
  EXPECT_FALSE(translate(*space, kPml4Gpa.value(), 200 * kMiB).has_value());
}

}  // namespace
}  // namespace vmfork::testing
