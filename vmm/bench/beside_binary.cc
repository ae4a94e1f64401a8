#include "vmm/bench/beside_binary.h"

#include <system_error>

namespace vmfork::bench {

std::filesystem::path beside_binary(const std::filesystem::path& relative) {
  std::error_code error;
  const std::filesystem::path binary = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return relative;
  return binary.parent_path() / relative;
}

}  // namespace vmfork::bench
