// The mix workload's C code (guests/mix/mix_work.c) built for the host: the
// constant the guest checks itself against is what this code computes, and
// the CRC is the standard one.
#include <cstdint>
#include <cstring>

#include <gtest/gtest.h>

#include "guests/mix/mix_guest.h"
#include "guests/mix/mix_work.h"

namespace {

uint16_t run_mix(uint32_t seed, uint32_t iterations) {
  mix_workspace workspace{};
  return mix_run(&workspace, seed, iterations);
}

TEST(MixWork, Crc16IsCcittFalse) {
  // The catalogued check value of CRC-16/CCITT-FALSE over "123456789".
  const char* check = "123456789";
  EXPECT_EQ(mix_crc16(0xFFFF, reinterpret_cast<const uint8_t*>(check),
                      static_cast<uint32_t>(std::strlen(check))),
            0x29B1);
}

TEST(MixWork, TheGuestsExpectedCrcIsTheNativeResult) {
  EXPECT_EQ(run_mix(MIX_SEED, MIX_GUEST_ITERATIONS), MIX_GUEST_EXPECTED_CRC)
      << "update MIX_GUEST_EXPECTED_CRC in guests/mix/mix_guest.h";
}

TEST(MixWork, NoIterationsLeavesTheInitialCrc) {
  EXPECT_EQ(run_mix(MIX_SEED, 0), 0xFFFF);
}

TEST(MixWork, EveryRoundChangesTheResult) {
  EXPECT_NE(run_mix(MIX_SEED, 1), run_mix(MIX_SEED, 2));
  EXPECT_NE(run_mix(MIX_SEED, 100), run_mix(MIX_SEED, 101));
}

TEST(MixWork, TheSeedChangesTheResult) {
  EXPECT_NE(run_mix(MIX_SEED, 10), run_mix(MIX_SEED + 1, 10));
}

TEST(MixWork, ARunDoesNotDependOnTheWorkspacesPreviousContents) {
  mix_workspace workspace{};
  const uint16_t first = mix_run(&workspace, MIX_SEED, 50);
  EXPECT_EQ(mix_run(&workspace, MIX_SEED, 50), first);
}

}  // namespace
