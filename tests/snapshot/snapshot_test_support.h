// Shared pieces of the snapshot tests: a temporary directory per test,
// sample configurations and vCPU states with every field set, a page walk
// over a map of pages, reading pages back through the PageSource, and edits
// of a written snapshot's files (with or without fixing their checksums, to
// reach the check behind the checksum or the checksum itself).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/guestmm/test_support.h"
#include "tests/support/temp_dir.h"
#include "vmm/snapshot/checksum.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/snapshot/write_snapshot.h"

namespace vmfork::testing {

namespace fs = std::filesystem;

inline constexpr uint64_t kChunkPages = PageSource::kChunkPages;

// A fresh directory under the system's temporary directory, removed with
// everything in it at the end of the test.
inline SnapshotConfig sample_config(uint32_t vcpus = 2, uint64_t ram_bytes = 4 * kMiB) {
  return {
      .vcpus = vcpus, .ram_bytes = ram_bytes, .guest = "/guests/hello.elf", .engine = Engine::kKvm};
}

// A vCPU state with every field set to a value that differs per vCPU and
// per field, so that a field lost or swapped in the file shows.
inline VcpuSnapshot sample_vcpu(uint32_t index) {
  VcpuSnapshot vcpu;
  CpuState& cpu = vcpu.cpu;
  const uint64_t base = uint64_t{index + 1} << 40;
  for (size_t i = 0; i < cpu.regs.gpr.size(); ++i)
    cpu.regs.gpr[i] = base + i;
  cpu.regs.gpr[15] = 0xffff'ffff'ffff'fff0 - index;  // above 2^53: must stay exact
  cpu.regs.rip = 0x10'0000 + index;
  cpu.regs.rflags = 0x246;
  uint16_t selector = 8;
  for (CpuSegment* s : {&cpu.segments.cs, &cpu.segments.ds, &cpu.segments.es, &cpu.segments.fs,
                        &cpu.segments.gs, &cpu.segments.ss, &cpu.segments.tr, &cpu.segments.ldt}) {
    *s = {.base = base + selector,
          .limit = 0xffff'ffff - selector,
          .selector = selector,
          .type = static_cast<uint8_t>(selector % 16),
          .dpl = static_cast<uint8_t>(selector % 4),
          .present = selector % 3 != 0,
          .default_32bit = selector % 5 == 0,
          .code_or_data = true,
          .long_mode = selector == 8,
          .granularity = true,
          .available = selector % 7 == 0,
          .unusable = selector == 64};
    selector = static_cast<uint16_t>(selector + 8);
  }
  cpu.segments.gdt = {.base = 0x1000 + index, .limit = 0x27};
  cpu.segments.idt = {.base = 0x2000 + index, .limit = 0xfff};
  cpu.control = {.cr0 = 0x8000'0011,
                 .cr2 = 0xdead'0000 + index,
                 .cr3 = 0x3000,
                 .cr4 = 0x20,
                 .cr8 = index,
                 .efer = 0x500,
                 .apic_base = 0xfee0'0900};
  cpu.msrs = {{.index = 0xc000'0081, .value = 0x23'0010'0000'0000},
              {.index = 0x4b56'4d10, .value = 0x5000 | 0x400 | index}};
  if (index % 2 == 0) cpu.tsc_offset = 0xffff'fff0'0000'0000 + index;  // odd ones have none
  cpu.fpu.engine = Engine::kKvm;
  for (uint32_t i = 0; i < 512; ++i)
    cpu.fpu.bytes.push_back(static_cast<uint8_t>(i * 7 + index));
  vcpu.halted = index == 1;
  return vcpu;
}

inline SnapshotState sample_state(uint32_t vcpus = 2) {
  SnapshotState state;
  for (uint32_t i = 0; i < vcpus; ++i)
    state.vcpus.push_back(sample_vcpu(i));
  state.requester = vcpus - 1;
  return state;
}

// A PC guest's platform state with every register set to a distinct value.
inline PlatformSnapshot sample_platform() {
  PlatformSnapshot platform;
  platform.chips.engine = Engine::kKvm;
  for (uint32_t i = 0; i < 1000; ++i)
    platform.chips.bytes.push_back(static_cast<uint8_t>(i * 13 + 1));
  Uart16550::State& com1 = platform.ports.com1;
  com1 = {.ier = 0x0f,
          .fcr = 0xc1,
          .lcr = 0x03,
          .mcr = 0x0b,
          .scr = 0x5a,
          .dll = 0x01,
          .dlm = 0x02,
          .thri_pending = true,
          .rx = {},
          .rx_head = 14,
          .rx_count = 3,
          .irq_level = true};
  for (size_t i = 0; i < com1.rx.size(); ++i)
    com1.rx[i] = static_cast<uint8_t>('a' + i);
  CmosRtc::State& rtc = platform.ports.rtc;
  rtc.index = 0x0b;
  rtc.nmi_masked = true;
  for (size_t i = 0; i < rtc.ram.size(); ++i)
    rtc.ram[i] = static_cast<uint8_t>(255 - i);
  return platform;
}

// A Linux guest's snapshot: Platform::kPc, with sample_platform().
inline SnapshotConfig sample_pc_config(uint32_t vcpus = 2, uint64_t ram_bytes = 4 * kMiB) {
  SnapshotConfig config = sample_config(vcpus, ram_bytes);
  config.guest = "/boot/vmlinuz";
  config.platform = Platform::kPc;
  return config;
}

inline SnapshotState sample_pc_state(uint32_t vcpus = 2) {
  SnapshotState state = sample_state(vcpus);
  state.platform = sample_platform();
  return state;
}

using Pages = std::map<uint64_t, std::vector<std::byte>>;  // gfn -> its 4 KiB

inline std::vector<std::byte> page_pattern(uint64_t seed) {
  return pattern(kPageSize, seed);
}

inline PageWalk walk(const Pages& pages) {
  return [&pages](const PageVisitor& visit) -> Result<void> {
    for (const auto& [gfn, bytes] : pages) {
      if (Result<void> visited = visit(Gfn(gfn), bytes.data()); !visited.ok()) return visited;
    }
    return Ok{};
  };
}

inline SnapshotWriteStats write(const fs::path& dir, const Pages& pages,
                                const SnapshotConfig& config = sample_config(),
                                const SnapshotState& state = sample_state(), CallSite where = {}) {
  return unwrap(write_snapshot(dir, config, state, walk(pages)), where);
}

// Reads chunk `chunk` through the source: every page with data, the others
// left as their buffers were (null pointers are passed for them).
inline Result<std::array<std::vector<std::byte>, kChunkPages>> read_chunk(const PageSource& source,
                                                                          uint64_t chunk) {
  std::array<std::vector<std::byte>, kChunkPages> buffers;
  std::array<std::byte*, kChunkPages> pointers{};
  const uint16_t mask = source.pages_with_data(chunk);
  for (uint64_t i = 0; i < kChunkPages; ++i) {
    if (!has_page(mask, i)) continue;
    buffers[i].assign(kPageSize, std::byte{0xcc});
    pointers[i] = buffers[i].data();
  }
  if (Result<void> read = source.read_chunk(chunk, pointers); !read.ok()) return read.error();
  return buffers;
}

// The page at `gfn` as the source gives it: empty if it has no data.
inline std::vector<std::byte> read_page(const PageSource& source, uint64_t gfn,
                                        CallSite where = {}) {
  auto chunk = unwrap(read_chunk(source, gfn / kChunkPages), where);
  return chunk[gfn % kChunkPages];
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Flips the bits of one byte of a file in place.
inline void flip_byte(const fs::path& path, uint64_t offset) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekg(static_cast<std::streamoff>(offset));
  const int byte = file.get();
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(static_cast<char>(byte ^ 0xff));
}

// Rewrites state.json after `edit`, with its self-checksum made right again
// (as a writer with a bug, not damage, would leave it).
inline void edit_state(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json state = nlohmann::json::parse(read_text(dir / "state.json"));
  edit(state);
  state.erase("checksum");
  state["checksum"] = checksum_text(bytes_checksum(state.dump()));
  write_text(dir / "state.json", state.dump(2));
}

// Makes `parent` the parent of the snapshot whose state.json is `state`,
// with the parent_checksum a diff records: that of parent's state.json as
// it is now, or a made-up one when it has none.
inline void set_parent(nlohmann::json& state, const fs::path& parent) {
  state["parent"] = parent.string();
  const fs::path parent_state = parent / "state.json";
  state["parent_checksum"] = checksum_text(
      fs::exists(parent_state) ? bytes_checksum(read_text(parent_state)) : uint64_t{1});
}

// Rewrites config.json after `edit`, with state.json's config_checksum made
// right again.
inline void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json config = nlohmann::json::parse(read_text(dir / "config.json"));
  edit(config);
  const std::string text = config.dump(2);
  write_text(dir / "config.json", text);
  edit_state(dir, [&](nlohmann::json& state) {
    state["config_checksum"] = checksum_text(bytes_checksum(text));
  });
}

// An error, of `code`, whose message holds every one of `parts`.
template <class T>
::testing::AssertionResult FailsWith(const Result<T>& result, ErrorCode code,
                                     std::initializer_list<std::string> parts) {
  if (result.ok()) return ::testing::AssertionFailure() << "succeeded";
  const Error& error = result.error();
  if (error.code != code) {
    return ::testing::AssertionFailure() << "code " << to_string(error.code) << " (expected "
                                         << to_string(code) << "): " << error.message;
  }
  for (const std::string& part : parts) {
    if (error.message.find(part) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "message \"" << error.message << "\" lacks \"" << part << "\"";
    }
  }
  return ::testing::AssertionSuccess() << error.message;
}

}  // namespace vmfork::testing
