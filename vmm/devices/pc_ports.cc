#include "vmm/devices/pc_ports.h"

#include <cassert>
#include <utility>

namespace vmfork {

namespace {
// What a read of `size` bytes sees where nothing answers.
uint32_t all_ones(uint8_t size) {
  return size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
}

// An 8-bit register read through an access of `size` bytes.
uint32_t widen(uint8_t byte, uint8_t size) {
  return (all_ones(size) & ~0xFFu) | byte;
}

bool valid_size(uint8_t size) {
  return size == 1 || size == 2 || size == 4;
}
}  // namespace

PcPorts::PcPorts(Callbacks callbacks, CmosRtc::Clock clock)
    : callbacks_(std::move(callbacks)),
      com1_(
          [this](uint8_t byte) {
            if (callbacks_.console_byte) callbacks_.console_byte(byte);
          },
          [this](bool level) {
            if (callbacks_.irq_line) callbacks_.irq_line(kCom1Gsi, level);
          }),
      rtc_(std::move(clock)) {}

uint32_t PcPorts::in(uint16_t port, uint8_t size) {
  assert(valid_size(size));
  if (!valid_size(size)) size = 4;
  if (port >= kCom1 && port < kCom1 + 8) {
    std::lock_guard lock(uart_mutex_);
    return widen(com1_.read(static_cast<uint8_t>(port - kCom1)), size);
  }
  switch (port) {
    case kI8042Data:
    case kI8042Command:
      // Status 0: output buffer empty (nothing to read), input buffer empty
      // (ready for a command).
      return widen(0, size);
    case kRtcIndex:
    case kRtcData: {
      std::lock_guard lock(rtc_mutex_);
      return widen(rtc_.read(static_cast<uint8_t>(port - kRtcIndex)), size);
    }
    case kPost:
      return all_ones(size);
    default:
      unhandled_.fetch_add(1, std::memory_order_relaxed);
      return all_ones(size);
  }
}

void PcPorts::out(uint16_t port, [[maybe_unused]] uint8_t size, uint32_t value) {
  assert(valid_size(size));
  const auto byte = static_cast<uint8_t>(value);
  if (port >= kCom1 && port < kCom1 + 8) {
    std::lock_guard lock(uart_mutex_);
    com1_.write(static_cast<uint8_t>(port - kCom1), byte);
    return;
  }
  switch (port) {
    case kI8042Data:
      return;
    case kI8042Command:
      // Only the reset pulse; the i8042 keeps no state, so no lock.
      if (byte == kI8042Reset && callbacks_.reset) callbacks_.reset();
      return;
    case kRtcIndex:
    case kRtcData: {
      std::lock_guard lock(rtc_mutex_);
      rtc_.write(static_cast<uint8_t>(port - kRtcIndex), byte);
      return;
    }
    case kPost:
      return;  // BIOS-style progress codes and I/O delays
    default:
      unhandled_.fetch_add(1, std::memory_order_relaxed);
      return;
  }
}

PcPorts::State PcPorts::save() {
  State state;
  {
    std::lock_guard lock(uart_mutex_);
    state.com1 = com1_.state();
  }
  std::lock_guard lock(rtc_mutex_);
  state.rtc = rtc_.state();
  return state;
}

void PcPorts::load(const State& state) {
  {
    std::lock_guard lock(uart_mutex_);
    com1_.set_state(state.com1);
  }
  std::lock_guard lock(rtc_mutex_);
  rtc_.set_state(state.rtc);
}

}  // namespace vmfork
