// The MC146818 real-time clock and CMOS RAM of a PC, at ports 0x70 (index;
// bit 7 masks NMI) and 0x71 (data). The time registers always show the host's
// UTC time (read from the clock at each access), in BCD and 24-hour format
// unless the guest changes register B; a guest that sets the time changes
// nothing. No update cycle is ever in progress (register A's UIP reads 0) and
// no RTC interrupt is raised. The other bytes are plain RAM, reading 0 until
// written. Not thread-safe: its owner (PcPorts) holds a lock around every call.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>

namespace vmfork {

class CmosRtc {
 public:
  // Where the time comes from: the host's wall clock, or a test's.
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // The two ports, as offsets.
  static constexpr uint8_t kIndexPort = 0;  // 0x70
  static constexpr uint8_t kDataPort = 1;   // 0x71

  // Register indexes.
  static constexpr uint8_t kSeconds = 0x00;
  static constexpr uint8_t kMinutes = 0x02;
  static constexpr uint8_t kHours = 0x04;
  static constexpr uint8_t kDayOfWeek = 0x06;  // 1 = Sunday
  static constexpr uint8_t kDayOfMonth = 0x07;
  static constexpr uint8_t kMonth = 0x08;
  static constexpr uint8_t kYear = 0x09;  // two digits
  static constexpr uint8_t kRegA = 0x0A;
  static constexpr uint8_t kRegB = 0x0B;
  static constexpr uint8_t kRegC = 0x0C;
  static constexpr uint8_t kRegD = 0x0D;
  static constexpr uint8_t kCentury = 0x32;

  static constexpr uint8_t kIndexNmiMask = 1 << 7;
  // Register A: 32.768 kHz time base, 1024 Hz periodic rate; bit 7 (UIP) is read-only.
  static constexpr uint8_t kRegAReset = 0x26;
  static constexpr uint8_t kRegAUip = 1 << 7;
  // Register B.
  static constexpr uint8_t kRegB24Hour = 1 << 1;
  static constexpr uint8_t kRegBBinary = 1 << 2;  // DM: binary instead of BCD
  static constexpr uint8_t kRegBReset = kRegB24Hour;
  // Register D: VRT, the battery is good.
  static constexpr uint8_t kRegDValid = 1 << 7;
  // The hour's bit 7 in 12-hour format.
  static constexpr uint8_t kHourPm = 1 << 7;

  static Clock system_clock() {
    return [] { return std::chrono::system_clock::now(); };
  }

  explicit CmosRtc(Clock clock = system_clock());

  // offset kIndexPort or kDataPort (higher bits are ignored).
  uint8_t read(uint8_t offset);
  void write(uint8_t offset, uint8_t value);

  // The NMI mask bit of the last index written.
  bool nmi_masked() const { return nmi_masked_; }

  // The index, the NMI mask and the RAM (registers A and B among it): what a
  // clone's RTC starts from. The time is the host's, in every clone.
  struct State {
    uint8_t index = 0;
    bool nmi_masked = false;
    std::array<uint8_t, 128> ram{};
    friend bool operator==(const State&, const State&) = default;
  };
  State state() const { return {index_, nmi_masked_, ram_}; }
  void set_state(const State& state) {
    index_ = state.index & 0x7F;
    nmi_masked_ = state.nmi_masked;
    ram_ = state.ram;
  }

 private:
  uint8_t read_register(uint8_t index) const;
  // A time field in the format register B asks for (BCD or binary).
  uint8_t encode(unsigned value) const;
  uint8_t encode_hour(unsigned hour) const;

  const Clock clock_;
  uint8_t index_ = 0;
  bool nmi_masked_ = false;
  std::array<uint8_t, 128> ram_{};  // registers A and B, and the plain RAM bytes
};

}  // namespace vmfork
