// The legacy PC ports a Linux guest probes, outside what KVM emulates in the
// kernel (PIC 0x20/0xA0, PIT 0x40-0x43, port 0x61, ELCR 0x4D0 never reach
// here): COM1 at 0x3F8 (GSI 4), the i8042's ports 0x60/0x64 (only its reset
// command), the CMOS RTC at 0x70/0x71, and the POST port 0x80. Anything else
// (COM2-4, PCI configuration at 0xCF8-0xCFF: this machine has no PCI) reads
// all ones and drops writes, and is counted.
//
// Thread-safe: vCPUs call in() and out() concurrently. Each device has its
// own mutex; a callback runs with its device's lock held, so it must not call
// back into PcPorts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>

#include "vmm/devices/cmos_rtc.h"
#include "vmm/devices/uart_16550.h"

namespace vmfork {

class PcPorts {
 public:
  struct Callbacks {
    std::function<void(uint8_t)> console_byte;               // COM1's output
    std::function<void(uint32_t gsi, bool level)> irq_line;  // COM1 is GSI 4
    std::function<void()> reset;  // the guest asked for a reset (i8042 0xFE to port 0x64)
  };

  static constexpr uint16_t kCom1 = 0x3F8;  // 8 ports
  static constexpr uint32_t kCom1Gsi = 4;
  static constexpr uint16_t kI8042Data = 0x60;
  static constexpr uint16_t kI8042Command = 0x64;  // read: status
  static constexpr uint8_t kI8042Reset = 0xFE;     // pulse the CPU's reset line
  static constexpr uint16_t kRtcIndex = 0x70;
  static constexpr uint16_t kRtcData = 0x71;
  static constexpr uint16_t kPost = 0x80;

  // `clock`: the RTC's time (tests inject one).
  explicit PcPorts(Callbacks callbacks, CmosRtc::Clock clock = CmosRtc::system_clock());
  PcPorts(const PcPorts&) = delete;
  PcPorts& operator=(const PcPorts&) = delete;

  // size 1, 2 or 4. A wider access to a device's port touches only the 8-bit
  // register at that port: the upper bytes of a read are all ones, those of a
  // write are dropped.
  uint32_t in(uint16_t port, uint8_t size);
  void out(uint16_t port, uint8_t size, uint32_t value);

  // The devices' registers, for a clone's PcPorts to start from.
  struct State {
    Uart16550::State com1;
    CmosRtc::State rtc;
    friend bool operator==(const State&, const State&) = default;
  };
  State save();
  void load(const State& state);

  // Accesses no device took (counted for a debug log).
  uint64_t unhandled_accesses() const { return unhandled_.load(std::memory_order_relaxed); }

 private:
  const Callbacks callbacks_;
  std::mutex uart_mutex_;
  Uart16550 com1_;  // guarded by uart_mutex_
  std::mutex rtc_mutex_;
  CmosRtc rtc_;  // guarded by rtc_mutex_
  std::atomic<uint64_t> unhandled_{0};
};

}  // namespace vmfork
