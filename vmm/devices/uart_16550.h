// A 16550A UART as Linux's 8250 driver sees it (drivers/tty/serial/8250):
// registers at offsets 0..7, FIFO detection through IIR, the loopback test of
// autoconfig, and the THR-empty interrupt. Transmit is instant (THR is always
// empty); input arrives only through receive() (loopback, or a future host
// side). Not thread-safe: its owner (PcPorts) holds a lock around every call,
// and the callbacks run inside those calls.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

namespace vmfork {

class Uart16550 {
 public:
  using Transmit = std::function<void(uint8_t)>;  // a byte the guest sent
  using IrqLevel = std::function<void(bool)>;     // the interrupt line changed level

  // Register offsets (DLAB, LCR bit 7, turns 0 and 1 into the divisor latch).
  static constexpr uint8_t kRbrThr = 0;  // read: receive buffer, write: transmit holding
  static constexpr uint8_t kIer = 1;     // interrupt enable
  static constexpr uint8_t kIirFcr = 2;  // read: interrupt identification, write: FIFO control
  static constexpr uint8_t kLcr = 3;     // line control
  static constexpr uint8_t kMcr = 4;     // modem control
  static constexpr uint8_t kLsr = 5;     // line status
  static constexpr uint8_t kMsr = 6;     // modem status
  static constexpr uint8_t kScr = 7;     // scratch
  static constexpr uint8_t kDll = 0;     // divisor latch, low byte (DLAB set)
  static constexpr uint8_t kDlm = 1;     // divisor latch, high byte (DLAB set)

  // IER bits (the 16550A has four; the rest read 0, which Linux's XScale probe checks).
  static constexpr uint8_t kIerRdi = 1 << 0;   // ERBFI: received data available
  static constexpr uint8_t kIerThri = 1 << 1;  // ETBEI: transmitter holding register empty
  static constexpr uint8_t kIerRlsi = 1 << 2;  // ELSI: receiver line status
  static constexpr uint8_t kIerMsi = 1 << 3;   // EDSSI: modem status
  static constexpr uint8_t kIerMask = 0x0F;
  // IIR values (bits 0-3) and the FIFO bits (6-7) a 16550A reports with FCR bit 0 set.
  static constexpr uint8_t kIirNoInt = 0x01;
  static constexpr uint8_t kIirThri = 0x02;
  static constexpr uint8_t kIirRdi = 0x04;
  static constexpr uint8_t kIirFifoEnabled = 0xC0;
  // FCR bits.
  static constexpr uint8_t kFcrEnableFifo = 1 << 0;
  static constexpr uint8_t kFcrClearRcvr = 1 << 1;
  static constexpr uint8_t kFcrClearXmit = 1 << 2;
  // LCR bit 7: divisor latch access.
  static constexpr uint8_t kLcrDlab = 1 << 7;
  // MCR bits (the 16550A has five).
  static constexpr uint8_t kMcrDtr = 1 << 0;
  static constexpr uint8_t kMcrRts = 1 << 1;
  static constexpr uint8_t kMcrOut1 = 1 << 2;
  static constexpr uint8_t kMcrOut2 = 1 << 3;  // gates the interrupt line on a PC
  static constexpr uint8_t kMcrLoop = 1 << 4;
  static constexpr uint8_t kMcrMask = 0x1F;
  // LSR bits.
  static constexpr uint8_t kLsrDr = 1 << 0;    // data ready
  static constexpr uint8_t kLsrThre = 1 << 5;  // transmitter holding register empty
  static constexpr uint8_t kLsrTemt = 1 << 6;  // transmitter empty
  // MSR bits (the inputs; the delta bits 0-3 always read 0 here).
  static constexpr uint8_t kMsrCts = 1 << 4;
  static constexpr uint8_t kMsrDsr = 1 << 5;
  static constexpr uint8_t kMsrRi = 1 << 6;
  static constexpr uint8_t kMsrDcd = 1 << 7;

  // The receive FIFO of a 16550A (one byte deep while the FIFO is off).
  static constexpr size_t kFifoSize = 16;

  Uart16550(Transmit transmit, IrqLevel irq);

  // offset 0..7 (higher bits are ignored).
  uint8_t read(uint8_t offset);
  void write(uint8_t offset, uint8_t value);

  // A byte for the guest to read (from the loopback, or a host-side input):
  // false when the receive FIFO is full and the byte was dropped (overrun).
  bool receive(uint8_t byte);

  // The level last reported through IrqLevel.
  bool irq_level() const { return irq_level_; }

  // Every register, the receive FIFO and the line's level: what a clone's
  // UART starts from (the callbacks stay each UART's own).
  struct State {
    uint8_t ier = 0, fcr = 0, lcr = 0, mcr = 0, scr = 0, dll = 0, dlm = 0;
    bool thri_pending = false;
    std::array<uint8_t, kFifoSize> rx{};
    size_t rx_head = 0, rx_count = 0;
    bool irq_level = false;
    friend bool operator==(const State&, const State&) = default;
  };
  State state() const;
  // Reports no level change: the clone's interrupt controller was copied
  // with the line's level in it.
  void set_state(const State& state);

 private:
  bool dlab() const { return (lcr_ & kLcrDlab) != 0; }
  bool fifo_enabled() const { return (fcr_ & kFcrEnableFifo) != 0; }
  bool loopback() const { return (mcr_ & kMcrLoop) != 0; }
  size_t rx_capacity() const { return fifo_enabled() ? kFifoSize : 1; }
  uint8_t pop_rx();
  void clear_rx() { rx_head_ = rx_count_ = 0; }
  uint8_t iir() const;
  uint8_t msr() const;
  void write_thr(uint8_t value);
  void write_ier(uint8_t value);
  void write_fcr(uint8_t value);
  // Recomputes the line level and reports a change.
  void update_irq();

  const Transmit transmit_;
  const IrqLevel irq_;

  uint8_t ier_ = 0;
  uint8_t fcr_ = 0;  // only bit 0 is kept: the clear bits act once, the trigger level is unused
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0C;  // 9600 baud from the 1.8432 MHz clock, what a PC BIOS leaves
  uint8_t dlm_ = 0;
  // THR-empty interrupt pending: set when THR empties (after every THR write,
  // transmit being instant) and when IER.ETBEI goes 0->1; cleared by a read of
  // IIR that reports it, or by a THR write.
  bool thri_pending_ = false;
  std::array<uint8_t, kFifoSize> rx_{};
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;
  bool irq_level_ = false;
};

}  // namespace vmfork
