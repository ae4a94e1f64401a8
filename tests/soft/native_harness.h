// Runs an instruction snippet natively (the host CPU is the oracle) and in the interpreter from
// the same registers, flags and memory, so tests can compare the two.
//
// Native: a prologue loads RFLAGS (popfq) and all 16 GPRs from slots, the snippet runs, an
// epilogue stores them back; all in an executable mapping. Interpreted: the same code and data
// addresses are guest-physical addresses of a FlatEnvironment holding copies, with hlt placed
// where the native epilogue starts.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tests/soft/flat_environment.h"
#include "vmm/soft/cpu_state.h"
#include "vmm/soft/interpreter.h"

namespace vmfork::soft::testing {

struct MachineState {
  std::array<uint64_t, 16> gpr{};
  uint64_t rflags = 0x202;
};

class NativeHarness {
 public:
  static constexpr size_t kDataBytes = 0x2000;
  static constexpr uint64_t kRipDataOffset = 0x1200;  // in the code mapping, for RIP-relative
  static constexpr size_t kRipDataBytes = 0x100;

  NativeHarness();
  ~NativeHarness();
  NativeHarness(const NativeHarness&) = delete;
  NativeHarness& operator=(const NativeHarness&) = delete;

  // The data buffer (two pages) both runs address; tests fill it before a run.
  uint64_t data_address() const { return reinterpret_cast<uint64_t>(data_); }
  std::byte* data() { return data_; }
  uint64_t snippet_address() const { return code_address() + snippet_offset_; }
  uint64_t code_address() const { return reinterpret_cast<uint64_t>(code_); }
  std::byte* rip_data() { return code_ + kRipDataOffset; }

  struct Outcome {
    MachineState native;
    MachineState interpreted;
    RunExit exit;
    uint64_t interpreted_rip = 0;
    std::string memory_mismatch;  // empty when data and RIP data agree
  };
  // Runs `snippet` both ways from `in` and the current data buffer contents.
  Outcome run(std::span<const uint8_t> snippet, const MachineState& in);

 private:
  std::byte* code_ = nullptr;
  std::byte* data_ = nullptr;
  size_t snippet_offset_ = 0;
  Interpreter interpreter_;
};

// Hex bytes of a snippet, for failure messages.
std::string hex_bytes(std::span<const uint8_t> bytes);

}  // namespace vmfork::soft::testing
