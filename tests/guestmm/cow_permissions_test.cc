// What a COW fault leaves in the leaf (DESIGN section 4, steps 5 and 7): the
// copy, with every permission the original had. A copy that lost X would
// send a vCPU fetching code from it into endless faults.
#include <gtest/gtest.h>

#include <memory>

#include "ept/access.h"
#include "ept/walker.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 16 * kMiB;
constexpr Gpa kPage{kMiB};

TEST(CowPermissions, ACopiedPageKeepsEveryPermissionOfTheOriginal) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, kPage, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(space->clone("clone"));
  const FrameId shared = memory->tree().walk(space->root(), kPage.gfn(), Access::kRead).frame;
  write_u64(*space, kPage, 2);  // a COW fault: the space gets a copy
  const WalkResult walk = memory->tree().walk(space->root(), kPage.gfn(), Access::kAll);
  ASSERT_TRUE(walk.ok()) << "the copy lost a permission";
  EXPECT_NE(walk.frame, shared);
  EXPECT_EQ(walk.allowed, Access::kAll);
}

}  // namespace
}  // namespace vmfork::testing
