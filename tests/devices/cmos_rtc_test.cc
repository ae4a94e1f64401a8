// The CMOS RTC: the injected clock's UTC time in BCD, and the status registers
// Linux's mc146818 code reads.
#include "vmm/devices/cmos_rtc.h"

#include <gtest/gtest.h>

namespace vmfork {
namespace {

using namespace std::chrono;

// 2026-12-04 (a Friday) 18:07:59 UTC, plus 0.75 s that must not round up.
system_clock::time_point test_time() {
  return sys_days{year{2026} / December / 4} + hours{18} + minutes{7} + seconds{59} +
         milliseconds{750};
}

class CmosRtcTest : public ::testing::Test {
 protected:
  system_clock::time_point now_ = test_time();
  CmosRtc rtc_{[this] { return now_; }};

  uint8_t reg(uint8_t index) {
    rtc_.write(CmosRtc::kIndexPort, index);
    return rtc_.read(CmosRtc::kDataPort);
  }
  void set(uint8_t index, uint8_t value) {
    rtc_.write(CmosRtc::kIndexPort, index);
    rtc_.write(CmosRtc::kDataPort, value);
  }
};

TEST_F(CmosRtcTest, TimeIsTheClocksUtcInBcd) {
  EXPECT_EQ(reg(CmosRtc::kSeconds), 0x59);
  EXPECT_EQ(reg(CmosRtc::kMinutes), 0x07);
  EXPECT_EQ(reg(CmosRtc::kHours), 0x18);
  EXPECT_EQ(reg(CmosRtc::kDayOfWeek), 0x06);  // Friday; Sunday is 1
  EXPECT_EQ(reg(CmosRtc::kDayOfMonth), 0x04);
  EXPECT_EQ(reg(CmosRtc::kMonth), 0x12);
  EXPECT_EQ(reg(CmosRtc::kYear), 0x26);
  EXPECT_EQ(reg(CmosRtc::kCentury), 0x20);
}

TEST_F(CmosRtcTest, TimeFollowsTheClockAtEachRead) {
  EXPECT_EQ(reg(CmosRtc::kSeconds), 0x59);
  now_ += milliseconds{250};
  EXPECT_EQ(reg(CmosRtc::kSeconds), 0x00);
  EXPECT_EQ(reg(CmosRtc::kMinutes), 0x08);
}

TEST_F(CmosRtcTest, NewYearsEveRollsOver) {
  now_ = sys_days{year{2099} / December / 31} + hours{23} + minutes{59} + seconds{59};
  EXPECT_EQ(reg(CmosRtc::kCentury), 0x20);
  EXPECT_EQ(reg(CmosRtc::kYear), 0x99);
  now_ += seconds{1};
  EXPECT_EQ(reg(CmosRtc::kCentury), 0x21);
  EXPECT_EQ(reg(CmosRtc::kYear), 0x00);
  EXPECT_EQ(reg(CmosRtc::kMonth), 0x01);
  EXPECT_EQ(reg(CmosRtc::kDayOfMonth), 0x01);
  EXPECT_EQ(reg(CmosRtc::kHours), 0x00);
  EXPECT_EQ(reg(CmosRtc::kDayOfWeek), 0x06);  // Friday
}

TEST_F(CmosRtcTest, StatusRegistersAfterReset) {
  EXPECT_EQ(reg(CmosRtc::kRegA), 0x26);  // UIP clear
  EXPECT_EQ(reg(CmosRtc::kRegB), 0x02);  // 24-hour, BCD
  EXPECT_EQ(reg(CmosRtc::kRegC), 0x00);
  EXPECT_EQ(reg(CmosRtc::kRegD), 0x80);  // valid RAM and time
}

TEST_F(CmosRtcTest, RegisterAKeepsUipClear) {
  set(CmosRtc::kRegA, 0xA6);
  EXPECT_EQ(reg(CmosRtc::kRegA), 0x26);
}

TEST_F(CmosRtcTest, RegistersCAndDAreReadOnly) {
  set(CmosRtc::kRegC, 0xFF);
  set(CmosRtc::kRegD, 0x00);
  EXPECT_EQ(reg(CmosRtc::kRegC), 0x00);
  EXPECT_EQ(reg(CmosRtc::kRegD), 0x80);
}

TEST_F(CmosRtcTest, GuestCannotSetTheTime) {
  set(CmosRtc::kHours, 0x03);
  set(CmosRtc::kYear, 0x70);
  EXPECT_EQ(reg(CmosRtc::kHours), 0x18);
  EXPECT_EQ(reg(CmosRtc::kYear), 0x26);
}

TEST_F(CmosRtcTest, RegisterBSelectsBinaryAnd12HourFormats) {
  set(CmosRtc::kRegB, CmosRtc::kRegB24Hour | CmosRtc::kRegBBinary);
  EXPECT_EQ(reg(CmosRtc::kRegB), 0x06);
  EXPECT_EQ(reg(CmosRtc::kSeconds), 59);
  EXPECT_EQ(reg(CmosRtc::kHours), 18);
  set(CmosRtc::kRegB, 0);  // BCD, 12-hour: 6 PM
  EXPECT_EQ(reg(CmosRtc::kHours), 0x86);
  now_ = sys_days{year{2026} / January / 1};  // midnight is 12 AM
  EXPECT_EQ(reg(CmosRtc::kHours), 0x12);
}

TEST_F(CmosRtcTest, OtherRegistersReadZeroAndKeepWrites) {
  EXPECT_EQ(reg(0x01), 0);
  EXPECT_EQ(reg(0x10), 0);
  EXPECT_EQ(reg(0x7F), 0);
  set(0x01, 0x42);
  set(0x7F, 0x99);
  EXPECT_EQ(reg(0x01), 0x42);
  EXPECT_EQ(reg(0x7F), 0x99);
}

TEST_F(CmosRtcTest, IndexBit7MasksNmiAndDoesNotSelect) {
  rtc_.write(CmosRtc::kIndexPort, CmosRtc::kIndexNmiMask | CmosRtc::kSeconds);
  EXPECT_TRUE(rtc_.nmi_masked());
  EXPECT_EQ(rtc_.read(CmosRtc::kDataPort), 0x59);
  rtc_.write(CmosRtc::kIndexPort, CmosRtc::kRegD);
  EXPECT_FALSE(rtc_.nmi_masked());
  EXPECT_EQ(rtc_.read(CmosRtc::kDataPort), 0x80);
}

TEST_F(CmosRtcTest, IndexPortReadsAllOnes) {
  EXPECT_EQ(rtc_.read(CmosRtc::kIndexPort), 0xFF);
}

TEST(CmosRtcSystemClockTest, ShowsTheHostsYear) {
  CmosRtc rtc;
  rtc.write(CmosRtc::kIndexPort, CmosRtc::kCentury);
  EXPECT_EQ(rtc.read(CmosRtc::kDataPort), 0x20);
}

}  // namespace
}  // namespace vmfork
