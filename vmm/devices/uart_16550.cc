#include "vmm/devices/uart_16550.h"

#include <algorithm>
#include <utility>

namespace vmfork {

Uart16550::Uart16550(Transmit transmit, IrqLevel irq)
    : transmit_(std::move(transmit)), irq_(std::move(irq)) {}

uint8_t Uart16550::read(uint8_t offset) {
  switch (offset & 7) {
    case kRbrThr: {
      if (dlab()) return dll_;
      uint8_t byte = pop_rx();
      update_irq();
      return byte;
    }
    case kIer:
      return dlab() ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t value = iir();
      // Reading IIR acknowledges a THR-empty interrupt, and only when it is
      // the one reported (a pending receive interrupt ranks above it).
      if ((value & 0x0F) == kIirThri) {
        thri_pending_ = false;
        update_irq();
      }
      return value;
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return static_cast<uint8_t>(kLsrThre | kLsrTemt | (rx_count_ > 0 ? kLsrDr : 0));
    case kMsr:
      return msr();
    default:
      return scr_;
  }
}

void Uart16550::write(uint8_t offset, uint8_t value) {
  switch (offset & 7) {
    case kRbrThr:
      if (dlab()) {
        dll_ = value;
      } else {
        write_thr(value);
      }
      return;
    case kIer:
      if (dlab()) {
        dlm_ = value;
      } else {
        write_ier(value);
      }
      return;
    case kIirFcr:
      write_fcr(value);
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      mcr_ = value & kMcrMask;
      update_irq();  // OUT2 gates the line
      return;
    case kLsr:
    case kMsr:
      return;  // read-only (LSR writes are a factory test mode)
    default:
      scr_ = value;
      return;
  }
}

bool Uart16550::receive(uint8_t byte) {
  if (rx_count_ == rx_capacity()) return false;
  rx_[(rx_head_ + rx_count_) % kFifoSize] = byte;
  rx_count_++;
  update_irq();
  return true;
}

uint8_t Uart16550::pop_rx() {
  if (rx_count_ == 0) return 0;
  uint8_t byte = rx_[rx_head_];
  rx_head_ = (rx_head_ + 1) % kFifoSize;
  rx_count_--;
  return byte;
}

uint8_t Uart16550::iir() const {
  uint8_t fifo = fifo_enabled() ? kIirFifoEnabled : 0;
  // Priority order of the 16550A: line status (never raised here), received
  // data, THR empty, modem status (no delta bits here).
  if ((ier_ & kIerRdi) != 0 && rx_count_ > 0) return fifo | kIirRdi;
  if ((ier_ & kIerThri) != 0 && thri_pending_) return fifo | kIirThri;
  return fifo | kIirNoInt;
}

uint8_t Uart16550::msr() const {
  if (!loopback()) return kMsrDcd | kMsrDsr | kMsrCts;  // a terminal is attached and ready
  // Loopback wires the modem outputs to the inputs; Linux's autoconfig writes
  // MCR = LOOP|OUT2|RTS and expects MSR & 0xF0 == DCD|CTS (0x90).
  uint8_t value = 0;
  if ((mcr_ & kMcrRts) != 0) value |= kMsrCts;
  if ((mcr_ & kMcrDtr) != 0) value |= kMsrDsr;
  if ((mcr_ & kMcrOut1) != 0) value |= kMsrRi;
  if ((mcr_ & kMcrOut2) != 0) value |= kMsrDcd;
  return value;
}

void Uart16550::write_thr(uint8_t value) {
  // The write fills THR (clearing the interrupt), and the byte leaves at once,
  // so THR is empty again: the interrupt is pending once more.
  if (loopback()) {
    receive(value);  // the transmitter feeds the receiver, nothing goes out
  } else {
    if (transmit_) transmit_(value);
  }
  thri_pending_ = true;
  update_irq();
}

void Uart16550::write_ier(uint8_t value) {
  uint8_t old = ier_;
  ier_ = value & kIerMask;
  // A 16550 raises THR-empty again when ETBEI is turned on while THR is empty
  // (always, here): Linux's startup tests exactly that (UART_BUG_THRE).
  if ((old & kIerThri) == 0 && (ier_ & kIerThri) != 0) thri_pending_ = true;
  update_irq();
}

void Uart16550::write_fcr(uint8_t value) {
  // Turning the FIFO on or off empties it, as on the 16550A.
  if (((fcr_ ^ value) & kFcrEnableFifo) != 0 || (value & kFcrClearRcvr) != 0) clear_rx();
  fcr_ = value & kFcrEnableFifo;
  update_irq();
}

void Uart16550::update_irq() {
  bool level = (iir() & kIirNoInt) == 0 && (mcr_ & kMcrOut2) != 0;
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_) irq_(level);
}

Uart16550::State Uart16550::state() const {
  return {.ier = ier_,
          .fcr = fcr_,
          .lcr = lcr_,
          .mcr = mcr_,
          .scr = scr_,
          .dll = dll_,
          .dlm = dlm_,
          .thri_pending = thri_pending_,
          .rx = rx_,
          .rx_head = rx_head_,
          .rx_count = rx_count_,
          .irq_level = irq_level_};
}

void Uart16550::set_state(const State& state) {
  ier_ = state.ier;
  fcr_ = state.fcr;
  lcr_ = state.lcr;
  mcr_ = state.mcr;
  scr_ = state.scr;
  dll_ = state.dll;
  dlm_ = state.dlm;
  thri_pending_ = state.thri_pending;
  rx_ = state.rx;
  rx_head_ = state.rx_head % kFifoSize;
  rx_count_ = std::min(state.rx_count, kFifoSize);
  irq_level_ = state.irq_level;
}

}  // namespace vmfork
