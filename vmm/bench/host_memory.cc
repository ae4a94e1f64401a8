#include "vmm/bench/host_memory.h"

#include <fstream>
#include <string>

#include "vmm/cli/size_arg.h"

namespace vmfork::bench {

namespace {

// MemAvailable from /proc/meminfo, in bytes; 0 when it cannot be read.
uint64_t available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

}  // namespace

Result<void> require_available_memory(uint64_t bytes, std::string_view purpose) {
  const uint64_t available = available_bytes();
  if (available == 0 || bytes <= available) return Ok{};
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(purpose) + " would touch " + cli::format_size(bytes) +
                        " of host memory, but only " + cli::format_size(available >> 20 << 20) +
                        " is available");
}

}  // namespace vmfork::bench
