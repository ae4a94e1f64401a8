// Reads a guest image from the host file system.
#pragma once

#include <cstddef>
#include <filesystem>
#include <vector>

#include "base/result.h"

namespace vmfork {

// The whole content of a regular file. Refuses anything else (a FIFO or
// /dev/zero would never end) and files larger than the largest guest RAM;
// host failures are kSystem errors naming the path and errno's text.
Result<std::vector<std::byte>> read_file(const std::filesystem::path& path);

}  // namespace vmfork
