#include "vmm/devices/cmos_rtc.h"

#include <utility>

namespace vmfork {

namespace {
bool is_time_register(uint8_t index) {
  switch (index) {
    case CmosRtc::kSeconds:
    case CmosRtc::kMinutes:
    case CmosRtc::kHours:
    case CmosRtc::kDayOfWeek:
    case CmosRtc::kDayOfMonth:
    case CmosRtc::kMonth:
    case CmosRtc::kYear:
    case CmosRtc::kCentury:
      return true;
    default:
      return false;
  }
}
}  // namespace

CmosRtc::CmosRtc(Clock clock) : clock_(std::move(clock)) {
  ram_[kRegA] = kRegAReset;
  ram_[kRegB] = kRegBReset;
}

uint8_t CmosRtc::read(uint8_t offset) {
  // The index port is write-only; what a read returns is undefined on real
  // hardware, all ones here (like QEMU).
  if ((offset & 1) == kIndexPort) return 0xFF;
  return read_register(index_);
}

void CmosRtc::write(uint8_t offset, uint8_t value) {
  if ((offset & 1) == kIndexPort) {
    index_ = value & 0x7F;
    nmi_masked_ = (value & kIndexNmiMask) != 0;
    return;
  }
  // The host's clock rules the time registers; C and D are read-only.
  if (is_time_register(index_) || index_ == kRegC || index_ == kRegD) return;
  if (index_ == kRegA) value &= static_cast<uint8_t>(~kRegAUip);
  ram_[index_] = value;
}

uint8_t CmosRtc::read_register(uint8_t index) const {
  switch (index) {
    case kRegC:
      return 0;  // no interrupt flags: the RTC raises none
    case kRegD:
      return kRegDValid;
    default:
      break;
  }
  if (!is_time_register(index)) return ram_[index];

  using namespace std::chrono;
  const system_clock::time_point now = clock_();
  const sys_days day = floor<days>(now);
  const year_month_day date{day};
  const hh_mm_ss time{floor<seconds>(now - day)};
  const int year = static_cast<int>(date.year());
  switch (index) {
    case kSeconds:
      return encode(static_cast<unsigned>(time.seconds().count()));
    case kMinutes:
      return encode(static_cast<unsigned>(time.minutes().count()));
    case kHours:
      return encode_hour(static_cast<unsigned>(time.hours().count()));
    case kDayOfWeek:
      return encode(weekday{day}.c_encoding() + 1);
    case kDayOfMonth:
      return encode(static_cast<unsigned>(date.day()));
    case kMonth:
      return encode(static_cast<unsigned>(date.month()));
    case kYear:
      return encode(static_cast<unsigned>(year % 100));
    default:  // kCentury
      return encode(static_cast<unsigned>(year / 100));
  }
}

uint8_t CmosRtc::encode(unsigned value) const {
  if ((ram_[kRegB] & kRegBBinary) != 0) return static_cast<uint8_t>(value);
  return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

uint8_t CmosRtc::encode_hour(unsigned hour) const {
  if ((ram_[kRegB] & kRegB24Hour) != 0) return encode(hour);
  // 12-hour format: 12, 1..11 with bit 7 for PM.
  unsigned twelve = hour % 12 == 0 ? 12 : hour % 12;
  return static_cast<uint8_t>(encode(twelve) | (hour >= 12 ? kHourPm : 0));
}

}  // namespace vmfork
