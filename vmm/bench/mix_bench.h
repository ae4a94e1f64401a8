// The mix workload in `vmfork bench cpu` (issue 13 part 3): the soft
// engine on realistic code. guests/mix.elf runs guests/mix/mix_work.c
// (linked lists, small matrices, a state machine, CRC-16) on 1 vCPU; in the
// same run, the same C code runs natively in this process and, when
// qemu-x86_64 (user-mode TCG) is installed, under it as the static host
// program bench/mix_native. Rates are iterations per second, medians.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "base/result.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork::bench {

struct MixBenchOptions {
  Engine engine = Engine::kSoft;
  std::filesystem::path guest;        // empty: guests/mix.elf beside the binary
  uint32_t host_iterations = 20'000;  // natively and under qemu-x86_64
  int repeat = 3;
};

struct MixBenchReport {
  std::filesystem::path guest;
  uint32_t guest_iterations = 0;  // the guest's own (fixed when it was built)
  uint16_t crc = 0;               // the guest's, equal to the native computation
  uint32_t host_iterations = 0;
  double soft_per_sec = 0;
  std::optional<double> engine_per_sec;  // for an engine other than soft
  double native_per_sec = 0;
  std::optional<std::filesystem::path> qemu;  // none: qemu-x86_64 is not installed
  std::optional<double> qemu_per_sec;
};

Result<MixBenchReport> run_mix_bench(const MixBenchOptions& options);

}  // namespace vmfork::bench
