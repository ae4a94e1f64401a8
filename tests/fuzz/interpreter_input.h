// The input of fuzz_interpreter: a header (registers and the environment's behaviour) followed
// by the first bytes of guest RAM. Fixed offsets, little-endian, so that a corpus file means
// the same thing on every run and make_fuzz_seeds can write one. A short input reads as if
// padded with zeros; an image longer than RAM is cut. Changing the layout changes what every
// file of corpus/fuzz_interpreter/ means: regenerate the seeds and merge anew.
//
//   offset  size
//     0     8*16  general registers, Gpr order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15)
//   128     8     rflags (only CF PF AF ZF SF IF DF OF are kept; bit 1 is always set)
//   136     8     fs base
//   144     8     gs base
//   152     4     in-RAM mask: bit i < 16 makes register i, bit 16 fs base, bit 17 gs base, an
//                 offset into RAM: kRamBase + value mod kRamBytes
//   156     2     RIP as an offset into RAM (mod kRamBytes)
//   158     2     read-only pages (EnvironmentConfig::read_only_pages)
//   160     2     instruction budget: 1 + value mod kMaxInstructions
//   162     1     stop every n-th check() (0: never; 1 counts as 2, so that runs make progress)
//   163     1     bump the flush generation every n-th check() (0: never)
//   164     4     value that `in` reads
//   168     2     port on which `in` and `out` fail
//   170     6     reserved (zero)
//   176     ...   guest RAM from kRamBase on
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "tests/fuzz/guarded_environment.h"
#include "vmm/soft/cpu_state.h"

namespace vmfork::fuzz {

inline constexpr uint64_t kMaxInstructions = 512;

struct InterpreterInput {
  static constexpr size_t kHeaderBytes = 176;
  static_assert(std::endian::native == std::endian::little, "fields are read in host order");

  std::array<uint64_t, soft::kGprCount> gpr{};
  uint64_t rflags = soft::rflags::kFixed1;
  uint64_t fs_base = 0;
  uint64_t gs_base = 0;
  uint32_t in_ram = 0;
  uint16_t rip_offset = 0;
  uint16_t read_only_pages = 0;
  uint16_t instructions = 0;
  uint8_t stop_every = 0;
  uint8_t flush_every = 0;
  uint32_t port_in_value = 0;
  uint16_t failing_port = 0;
  std::vector<std::byte> image;

  static InterpreterInput parse(std::span<const std::byte> data) {
    std::array<std::byte, kHeaderBytes> header{};
    const std::span<const std::byte> given = data.first(std::min(data.size(), kHeaderBytes));
    std::copy(given.begin(), given.end(), header.begin());
    InterpreterInput in;
    Fields<const std::byte>(header.data()).visit(in);
    if (data.size() > kHeaderBytes) {
      const std::span<const std::byte> ram = data.subspan(kHeaderBytes);
      const std::span<const std::byte> kept = ram.first(std::min<size_t>(ram.size(), kRamBytes));
      in.image.assign(kept.begin(), kept.end());
    }
    return in;
  }

  std::vector<std::byte> encode() const {
    std::vector<std::byte> out(kHeaderBytes);
    InterpreterInput copy = *this;
    Fields<std::byte>(out.data()).visit(copy);
    out.insert(out.end(), image.begin(), image.end());
    return out;
  }

  // The register state the interpreter starts from.
  soft::CpuState state() const {
    soft::CpuState s;
    for (unsigned i = 0; i < soft::kGprCount; ++i)
      s.gpr[i] = resolve(gpr[i], i);
    s.fs_base = resolve(fs_base, 16);
    s.gs_base = resolve(gs_base, 17);
    s.rip = kRamBase + rip_offset % kRamBytes;
    constexpr uint64_t kKept = soft::rflags::kArithmetic | soft::rflags::kIf | soft::rflags::kDf;
    s.rflags = (rflags & kKept) | soft::rflags::kFixed1;
    return s;
  }

  uint64_t budget() const { return 1 + instructions % kMaxInstructions; }

  EnvironmentConfig environment() const {
    return {.read_only_pages = read_only_pages,
            .stop_every = stop_every == 1 ? uint8_t{2} : stop_every,
            .flush_every = flush_every,
            .port_in_value = port_in_value,
            .failing_port = failing_port};
  }

 private:
  uint64_t resolve(uint64_t value, unsigned bit) const {
    return ((in_ram >> bit) & 1) != 0 ? kRamBase + value % kRamBytes : value;
  }

  // Copies every header field between `in` and the bytes at `at`, in either direction: from the
  // bytes when Byte is const, to them otherwise. One list of offsets for both.
  template <class Byte>
  struct Fields {
    explicit Fields(Byte* at) : base(at) {}
    Byte* base;

    template <class T>
    void field(size_t offset, T& value) {
      if constexpr (std::is_const_v<Byte>) {
        std::memcpy(&value, base + offset, sizeof(T));
      } else {
        std::memcpy(base + offset, &value, sizeof(T));
      }
    }

    void visit(InterpreterInput& in) {
      for (size_t i = 0; i < in.gpr.size(); ++i)
        field(8 * i, in.gpr[i]);
      field(128, in.rflags);
      field(136, in.fs_base);
      field(144, in.gs_base);
      field(152, in.in_ram);
      field(156, in.rip_offset);
      field(158, in.read_only_pages);
      field(160, in.instructions);
      field(162, in.stop_every);
      field(163, in.flush_every);
      field(164, in.port_in_value);
      field(168, in.failing_port);
    }
  };
};

}  // namespace vmfork::fuzz
