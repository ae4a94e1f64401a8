// The host's own Linux kernel (Debian's linux-image-amd64), for the tests
// that parse or boot a real bzImage: the first /boot/vmlinuz-* this process
// may read, if any (the tests skip without one).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

namespace vmfork::testing {

inline std::optional<std::filesystem::path> host_kernel() {
  std::error_code error;
  std::vector<std::filesystem::path> kernels;
  for (const auto& entry : std::filesystem::directory_iterator("/boot", error)) {
    if (entry.path().filename().string().starts_with("vmlinuz-")) kernels.push_back(entry.path());
  }
  std::sort(kernels.begin(), kernels.end());
  for (const std::filesystem::path& path : kernels) {
    if (::access(path.c_str(), R_OK) == 0) return path;
  }
  return std::nullopt;
}

}  // namespace vmfork::testing
