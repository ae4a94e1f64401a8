// Files the build puts beside the vmfork binary (guests/<name>.elf,
// bench/mix_native), found from /proc/self/exe so that a bench works from
// any working directory.
#pragma once

#include <filesystem>

namespace vmfork::bench {

// `relative` resolved against the directory of the running binary; as
// given when that directory cannot be read.
std::filesystem::path beside_binary(const std::filesystem::path& relative);

}  // namespace vmfork::bench
