#include "vmm/bench/host_memory.h"

#include <spdlog/fmt/fmt.h>

#include <fstream>
#include <sstream>
#include <string>

#include "vmm/cli/size_arg.h"

namespace vmfork::bench {

Result<void> require_available_memory(uint64_t bytes, std::string_view purpose) {
  // Unknown (no MemAvailable): let the bench try.
  Result<uint64_t> known = proc_kb_field("/proc/meminfo", "MemAvailable");
  const uint64_t available = known ? *known : 0;
  if (available == 0 || bytes <= available) return Ok{};
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(purpose) + " would touch " + cli::format_size(bytes) +
                        " of host memory, but only " + cli::format_size(available >> 20 << 20) +
                        " is available");
}

Result<uint64_t> proc_kb_field(const char* file, std::string_view key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 ||
        line[key.size()] != ':') {
      continue;
    }
    std::istringstream fields(line.substr(key.size() + 1));
    uint64_t kb = 0;
    if (fields >> kb) return kb * 1024;
  }
  return make_error(ErrorCode::kSystem, fmt::format("no \"{}\" in {}", key, file));
}

}  // namespace vmfork::bench
