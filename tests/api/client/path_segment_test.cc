// A VM id in a request target names that id and no other path.
#include "vmm/api/client/path_segment.h"

#include <gtest/gtest.h>

namespace vmfork::api {
namespace {

TEST(PathSegment, AnOrdinaryIdIsLeftAlone) {
  EXPECT_EQ(path_segment("vm0.1_a-b~"), "vm0.1_a-b~");
}

TEST(PathSegment, SlashesQueriesAndBlanksArePercentEncoded) {
  EXPECT_EQ(path_segment("../vms?x=1 y"), "..%2Fvms%3Fx%3D1%20y");
}

}  // namespace
}  // namespace vmfork::api
