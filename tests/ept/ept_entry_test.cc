// EptEntry, Eptp and the index arithmetic, checked against the bit positions
// of Intel SDM vol. 3C (EPT entry formats, "Format of Extended-Page-Table
// Pointer").
#include "ept/ept_entry.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "base/types.h"
#include "ept/access.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

constexpr uint64_t bit(int n) {
  return uint64_t{1} << n;
}

constexpr std::array<Access, 8> kAllAccesses = {
    Access::kNone,
    Access::kRead,
    Access::kWrite,
    Access::kReadWrite,
    Access::kExecute,
    Access::kReadExecute,
    Access::kWrite | Access::kExecute,
    Access::kAll,
};

TEST(EptEntryTest, BitsSitWhereTheSdmPutsThem) {
  EXPECT_EQ(EptEntry::kRead, bit(0));
  EXPECT_EQ(EptEntry::kWrite, bit(1));
  EXPECT_EQ(EptEntry::kExecute, bit(2));
  EXPECT_EQ(EptEntry::kMemoryTypeMask, bit(3) | bit(4) | bit(5));
  EXPECT_EQ(EptEntry::kIgnorePat, bit(6));
  EXPECT_EQ(EptEntry::kLargePage, bit(7));
  EXPECT_EQ(EptEntry::kAccessed, bit(8));
  EXPECT_EQ(EptEntry::kDirty, bit(9));
  EXPECT_EQ(EptEntry::kUserExecute, bit(10));
}

TEST(EptEntryTest, SoftwareLockUsesAnIgnoredBitOutsideTheAddress) {
  EXPECT_EQ(EptEntry::kSoftwareLock, bit(11));
  EXPECT_EQ(EptEntry::kAddressMask & EptEntry::kSoftwareLock, 0u);
}

TEST(EptEntryTest, AddressFieldIsBits51To12) {
  uint64_t expected = 0;
  for (int b = 12; b <= 51; ++b) {
    expected |= bit(b);
  }
  EXPECT_EQ(EptEntry::kAddressMask, expected);
}

TEST(EptEntryTest, LeafEncodesFramePermissionsAndMemoryType) {
  const EptEntry leaf = EptEntry::leaf(FrameId(0x1234), Access::kReadExecute);
  EXPECT_EQ(leaf.raw(), (uint64_t{0x1234} << 12) | bit(0) | bit(2) | (uint64_t{6} << 3));
  EXPECT_EQ(leaf.memory_type(), MemoryType::kWriteBack);
}

TEST(EptEntryTest, TableEntryCarriesNoMemoryType) {
  const EptEntry table = EptEntry::table(FrameId(0x42), Access::kAll);
  EXPECT_EQ(table.raw(), (uint64_t{0x42} << 12) | bit(0) | bit(1) | bit(2));
}

TEST(EptEntryTest, MemoryTypeRoundTripsThroughBits5To3) {
  for (MemoryType type :
       {MemoryType::kUncacheable, MemoryType::kWriteCombining, MemoryType::kWriteThrough,
        MemoryType::kWriteProtected, MemoryType::kWriteBack}) {
    const EptEntry leaf = EptEntry::leaf(FrameId(9), Access::kRead, type);
    EXPECT_EQ((leaf.raw() >> 3) & 7, static_cast<uint8_t>(type));
    EXPECT_EQ(leaf.memory_type(), type);
  }
}

TEST(EptEntryTest, FrameRoundTripsThroughTheAddressField) {
  const uint64_t kLargestFrame = (uint64_t{1} << 40) - 1;  // MAXPHYADDR 52
  for (uint64_t index : {uint64_t{1}, uint64_t{0x1FF}, uint64_t{0x12345678}, kLargestFrame}) {
    const EptEntry leaf = EptEntry::leaf(FrameId(index), Access::kAll);
    EXPECT_EQ(leaf.frame(), FrameId(index));
    EXPECT_EQ(leaf.raw() & EptEntry::kAddressMask, FrameId(index).pool_offset());
    EXPECT_EQ(EptEntry::table(FrameId(index), Access::kRead).frame(), FrameId(index));
  }
}

TEST(EptEntryTest, FrameIgnoresEveryBitOutsideTheAddressField) {
  const EptEntry leaf = EptEntry::leaf(FrameId(77), Access::kAll)
                            .with(EptEntry::kSoftwareLock | EptEntry::kAccessed | EptEntry::kDirty |
                                  EptEntry::kIgnorePat | bit(52) | bit(63));
  EXPECT_EQ(leaf.frame(), FrameId(77));
}

TEST(EptEntryTest, PresentIffAnyOfBits2To0IsSet) {
  for (uint64_t low = 0; low < 8; ++low) {
    EXPECT_EQ(EptEntry(low).present(), low != 0) << "bits 2:0 = " << low;
  }
}

TEST(EptEntryTest, BitsOtherThan2To0DoNotMakeAnEntryPresent) {
  const uint64_t others = EptEntry::kAddressMask | EptEntry::kMemoryTypeMask |
                          EptEntry::kIgnorePat | EptEntry::kLargePage | EptEntry::kAccessed |
                          EptEntry::kDirty | EptEntry::kUserExecute | EptEntry::kSoftwareLock;
  EXPECT_FALSE(EptEntry(others).present());
}

TEST(EptEntryTest, AccessAndPermissionBitsRoundTripForAllEightValues) {
  for (Access access : kAllAccesses) {
    SCOPED_TRACE(to_string(access));
    EXPECT_EQ(EptEntry::permission_bits(access), static_cast<uint64_t>(access));
    EXPECT_EQ(EptEntry(EptEntry::permission_bits(access)).access(), access);
    EXPECT_EQ(EptEntry::leaf(FrameId(3), access).access(), access);
  }
}

TEST(EptEntryTest, AccessIgnoresBitsAbove2) {
  EXPECT_EQ(EptEntry(EptEntry::kRead | EptEntry::kLargePage | EptEntry::kSoftwareLock).access(),
            Access::kRead);
}

TEST(EptEntryTest, WithAccessReplacesOnlyThePermissions) {
  const EptEntry leaf =
      EptEntry::leaf(FrameId(5), Access::kAll, MemoryType::kWriteThrough).with(EptEntry::kDirty);
  const EptEntry reduced = leaf.with_access(Access::kRead);
  EXPECT_EQ(reduced.access(), Access::kRead);
  EXPECT_EQ(reduced.raw() & ~EptEntry::kPermissionMask, leaf.raw() & ~EptEntry::kPermissionMask);
}

TEST(EptEntryTest, WritableAndLockedReadTheirBits) {
  EXPECT_TRUE(EptEntry(EptEntry::kWrite).writable());
  EXPECT_FALSE(EptEntry(EptEntry::kRead | EptEntry::kExecute).writable());
  EXPECT_TRUE(EptEntry(EptEntry::kSoftwareLock).locked());
  EXPECT_FALSE(EptEntry::leaf(FrameId(1), Access::kAll).locked());
  EXPECT_TRUE(EptEntry(EptEntry::kLargePage).large_page());
}

TEST(EptpTest, ForRootIsAFourLevelWalk) {
  const Eptp eptp = Eptp::for_root(FrameId(0x99));
  EXPECT_EQ(eptp.walk_length(), 4);
  EXPECT_EQ((eptp.raw() >> 3) & 7, 3u) << "bits 5:3 hold the walk length minus one";
}

TEST(EptpTest, ForRootIsWriteBack) {
  const Eptp eptp = Eptp::for_root(FrameId(0x99));
  EXPECT_EQ(eptp.memory_type(), MemoryType::kWriteBack);
  EXPECT_EQ(eptp.raw() & 7, 6u) << "bits 2:0 hold the paging-structure memory type";
}

TEST(EptpTest, ForRootLeavesAccessedDirtyDisabled) {
  EXPECT_EQ(Eptp::for_root(FrameId(0x99)).raw() & bit(6), 0u);
  EXPECT_EQ(Eptp::kEnableAccessedDirty, bit(6));
}

TEST(EptpTest, RootRoundTripsThroughTheAddressField) {
  const Eptp eptp = Eptp::for_root(FrameId(0xABCDE));
  EXPECT_EQ(eptp.root(), FrameId(0xABCDE));
  EXPECT_EQ(eptp.raw() & Eptp::kAddressMask, FrameId(0xABCDE).pool_offset());
}

TEST(EptpTest, OnlyTheDefaultEptpIsInvalid) {
  EXPECT_FALSE(Eptp().valid());
  EXPECT_TRUE(Eptp::for_root(FrameId(1)).valid());
}

TEST(EptpTest, EptpsOfDifferentRootsDiffer) {
  EXPECT_NE(Eptp::for_root(FrameId(1)), Eptp::for_root(FrameId(2)));
  EXPECT_EQ(Eptp::for_root(FrameId(1)), Eptp::for_root(FrameId(1)));
}

TEST(EptIndexTest, EachLevelTakesItsNineBitsOfTheGfn) {
  const uint64_t pml4 = 0x1A3, pdpt = 0x0F0, pd = 0x155, pt = 0x1FF;
  const Gfn gfn((pml4 << 27) | (pdpt << 18) | (pd << 9) | pt);
  EXPECT_EQ(ept_index(gfn, 4), pml4);
  EXPECT_EQ(ept_index(gfn, 3), pdpt);
  EXPECT_EQ(ept_index(gfn, 2), pd);
  EXPECT_EQ(ept_index(gfn, 1), pt);
}

TEST(EptIndexTest, GfnOfAGpaDropsThePageOffset) {
  const Gpa gpa((uint64_t{3} << 21) | (uint64_t{7} << 12) | 0xABC);
  EXPECT_EQ(gpa.gfn(), Gfn((uint64_t{3} << 9) | 7));
  EXPECT_EQ(gpa.page_offset(), 0xABCu);
  EXPECT_EQ(ept_index(gpa.gfn(), 2), 3u);
  EXPECT_EQ(ept_index(gpa.gfn(), 1), 7u);
}

TEST(EptIndexTest, MaxGfnCoversExactly48BitsOfGuestPhysicalAddress) {
  EXPECT_EQ(Gfn(kMaxGfn).gpa().value() + kPageSize, uint64_t{1} << 48);
  for (int level = 1; level <= kEptLevels; ++level) {
    EXPECT_EQ(ept_index(Gfn(kMaxGfn), level), kEptEntriesPerTable - 1);
  }
}

}  // namespace
}  // namespace vmfork
