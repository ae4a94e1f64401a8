#include "tests/soft/native_harness.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vmfork::soft::testing {
namespace {

constexpr size_t kCodeBytes = 0x2000;
// Slots in the code mapping's second page.
constexpr uint64_t kInGpr = 0x1000;
constexpr uint64_t kInFlags = 0x1080;
constexpr uint64_t kOutGpr = 0x1100;
constexpr uint64_t kOutFlags = 0x1180;
constexpr uint64_t kHostRsp = 0x1188;

class Emitter {
 public:
  explicit Emitter(std::byte* base) : base_(base) {}
  size_t offset() const { return at_; }
  void bytes(std::initializer_list<uint8_t> b) {
    for (uint8_t x : b)
      base_[at_++] = std::byte{x};
  }
  void raw(std::span<const uint8_t> b) {
    for (uint8_t x : b)
      base_[at_++] = std::byte{x};
  }
  // A RIP-relative ModRM (mod 00, rm 101) with the given reg field, to `slot`.
  void rip_relative(uint8_t opcode, unsigned reg, uint64_t slot, bool rex_w = true) {
    const auto rex = static_cast<uint8_t>((rex_w ? 0x48 : 0x40) | ((reg >> 3) << 2));
    if (rex != 0x40) bytes({rex});
    bytes({opcode, static_cast<uint8_t>(0x05 | ((reg & 7) << 3))});
    const auto disp =
        static_cast<int32_t>(static_cast<int64_t>(slot) - static_cast<int64_t>(at_ + 4));
    std::memcpy(base_ + at_, &disp, 4);
    at_ += 4;
  }

 private:
  std::byte* base_;
  size_t at_ = 0;
};

}  // namespace

NativeHarness::NativeHarness() {
  void* code = mmap(nullptr, kCodeBytes, PROT_READ | PROT_WRITE | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* data =
      mmap(nullptr, kDataBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED || data == MAP_FAILED) throw std::runtime_error("mmap failed");
  code_ = static_cast<std::byte*>(code);
  data_ = static_cast<std::byte*>(data);
  Emitter e(code_);
  e.bytes({0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57});  // push rbx..r15
  e.rip_relative(0x89, 4, kHostRsp);                                      // mov [host_rsp], rsp
  e.rip_relative(0xff, 6, kInFlags, false);                               // push [in_flags]
  e.bytes({0x9d});                                                        // popfq
  for (unsigned r = 0; r < 16; ++r)
    e.rip_relative(0x8b, r, kInGpr + 8 * r);  // mov r, [in]
  snippet_offset_ = e.offset();
}

NativeHarness::~NativeHarness() {
  munmap(code_, kCodeBytes);
  munmap(data_, kDataBytes);
}

NativeHarness::Outcome NativeHarness::run(std::span<const uint8_t> snippet,
                                          const MachineState& in) {
  Outcome out;
  // Emit snippet and epilogue.
  Emitter e(code_);
  for (size_t i = 0; i < snippet_offset_; ++i)
    e.bytes({static_cast<uint8_t>(code_[i])});
  e.raw(snippet);
  const size_t end = e.offset();
  for (unsigned r = 0; r < 16; ++r)
    e.rip_relative(0x89, r, kOutGpr + 8 * r);                                   // mov [out], r
  e.rip_relative(0x8b, 4, kHostRsp);                                            // mov rsp, [host]
  e.bytes({0x9c, 0x58});                                                        // pushfq; pop rax
  e.rip_relative(0x89, 0, kOutFlags);                                           // mov [out], rax
  e.bytes({0xfc});                                                              // cld
  e.bytes({0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3});  // pops; ret
  std::memcpy(code_ + kInGpr, in.gpr.data(), 128);
  std::memcpy(code_ + kInFlags, &in.rflags, 8);

  // The interpreter's copy, taken before the native run changes anything.
  FlatEnvironment env;
  env.add_region(code_address(), kCodeBytes / 4096);
  env.add_region(data_address(), kDataBytes / 4096);
  env.store(code_address(), code_, kCodeBytes);
  env.store(data_address(), data_, kDataBytes);
  const uint8_t hlt = 0xf4;
  env.store(code_address() + end, &hlt, 1);

  __builtin___clear_cache(reinterpret_cast<char*>(code_),
                          reinterpret_cast<char*>(code_ + kCodeBytes));
  reinterpret_cast<void (*)()>(code_)();
  std::memcpy(out.native.gpr.data(), code_ + kOutGpr, 128);
  std::memcpy(&out.native.rflags, code_ + kOutFlags, 8);

  CpuState state;
  for (unsigned r = 0; r < 16; ++r)
    state.gpr[r] = in.gpr[r];
  state.rflags = in.rflags;
  state.rip = snippet_address();
  interpreter_.flush_decoded();
  out.exit = interpreter_.run(state, env, 100000);
  for (unsigned r = 0; r < 16; ++r)
    out.interpreted.gpr[r] = state.gpr[r];
  out.interpreted.rflags = state.rflags;
  out.interpreted_rip = state.rip;
  if (out.exit.reason == ExitReason::kHalted && state.rip != code_address() + end + 1) {
    out.memory_mismatch = "halted at the wrong RIP";
  }

  std::vector<std::byte> copy(kDataBytes);
  env.load(data_address(), copy.data(), kDataBytes);
  for (size_t i = 0; i < kDataBytes && out.memory_mismatch.empty(); ++i) {
    if (copy[i] != data_[i]) out.memory_mismatch = "data byte at offset " + std::to_string(i);
  }
  std::vector<std::byte> rip_copy(kRipDataBytes);
  env.load(code_address() + kRipDataOffset, rip_copy.data(), kRipDataBytes);
  if (out.memory_mismatch.empty() && std::memcmp(rip_copy.data(), rip_data(), kRipDataBytes) != 0) {
    out.memory_mismatch = "RIP-relative data";
  }
  return out;
}

std::string hex_bytes(std::span<const uint8_t> bytes) {
  std::string s;
  for (uint8_t b : bytes) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x ", b);
    s += buf;
  }
  return s;
}

}  // namespace vmfork::soft::testing
