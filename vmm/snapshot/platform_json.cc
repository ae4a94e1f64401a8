#include "vmm/snapshot/platform_json.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "vmm/snapshot/cpu_state_json.h"

namespace vmfork {
namespace {

using nlohmann::json;
using Node = JsonFields::Node;

struct NamedRegister {
  const char* name;
  uint8_t Uart16550::State::*member;
};
constexpr std::array<NamedRegister, 7> kUartRegisters = {{{"ier", &Uart16550::State::ier},
                                                          {"fcr", &Uart16550::State::fcr},
                                                          {"lcr", &Uart16550::State::lcr},
                                                          {"mcr", &Uart16550::State::mcr},
                                                          {"scr", &Uart16550::State::scr},
                                                          {"dll", &Uart16550::State::dll},
                                                          {"dlm", &Uart16550::State::dlm}}};

uint8_t byte_from_json(JsonFields& f, const Node& node, uint8_t max = UINT8_MAX) {
  return static_cast<uint8_t>(f.unsigned_integer(node, max));
}

// Exactly `array.size()` bytes of hex.
template <size_t N>
void bytes_into(JsonFields& f, const Node& node, std::array<uint8_t, N>& array) {
  const std::vector<uint8_t> bytes = f.hex_bytes(node);
  if (f.failed()) return;
  if (bytes.size() != N) {
    f.fail(node, std::to_string(bytes.size()) + " bytes, expected " + std::to_string(N));
    return;
  }
  std::copy(bytes.begin(), bytes.end(), array.begin());
}

json uart_to_json(const Uart16550::State& uart) {
  json out = json::object();
  for (const NamedRegister& r : kUartRegisters)
    out[r.name] = uart.*r.member;
  out["thri_pending"] = uart.thri_pending;
  out["irq_level"] = uart.irq_level;
  out["rx"] = hex_text(uart.rx);
  out["rx_head"] = uart.rx_head;
  out["rx_count"] = uart.rx_count;
  return out;
}

Uart16550::State uart_from_json(JsonFields& f, const Node& node) {
  Uart16550::State uart;
  for (const NamedRegister& r : kUartRegisters)
    uart.*r.member = byte_from_json(f, f.field(node, r.name));
  uart.thri_pending = f.boolean(f.field(node, "thri_pending"));
  uart.irq_level = f.boolean(f.field(node, "irq_level"));
  bytes_into(f, f.field(node, "rx"), uart.rx);
  uart.rx_head = f.unsigned_integer(f.field(node, "rx_head"), Uart16550::kFifoSize - 1);
  uart.rx_count = f.unsigned_integer(f.field(node, "rx_count"), Uart16550::kFifoSize);
  return uart;
}

json rtc_to_json(const CmosRtc::State& rtc) {
  return {{"index", rtc.index}, {"nmi_masked", rtc.nmi_masked}, {"ram", hex_text(rtc.ram)}};
}

CmosRtc::State rtc_from_json(JsonFields& f, const Node& node) {
  CmosRtc::State rtc;
  rtc.index = byte_from_json(f, f.field(node, "index"), 0x7F);
  rtc.nmi_masked = f.boolean(f.field(node, "nmi_masked"));
  bytes_into(f, f.field(node, "ram"), rtc.ram);
  return rtc;
}

}  // namespace

json platform_to_json(const PlatformSnapshot& platform) {
  return {{"chips", engine_blob_to_json(platform.chips)},
          {"com1", uart_to_json(platform.ports.com1)},
          {"rtc", rtc_to_json(platform.ports.rtc)}};
}

PlatformSnapshot platform_from_json(JsonFields& f, const Node& node) {
  PlatformSnapshot platform;
  platform.chips = engine_blob_from_json(f, f.field(node, "chips"));
  platform.ports.com1 = uart_from_json(f, f.field(node, "com1"));
  platform.ports.rtc = rtc_from_json(f, f.field(node, "rtc"));
  return platform;
}

}  // namespace vmfork
