// Running another host program from a bench (qemu-x86_64 with the mix
// workload): its standard output collected, its run timed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vmfork::bench {

struct ProgramRun {
  int exit_status = -1;  // -1 when a signal ended it
  std::string output;    // everything it wrote to stdout
  uint64_t ns = 0;       // from just before the spawn to its exit
};

// Runs argv[0] (a path, not searched) with argv, stdin from /dev/null and
// stderr shared with vmfork, and waits for it. An error when it cannot be
// started; its own failure is in exit_status.
Result<ProgramRun> run_program(const std::vector<std::string>& argv);

// The first executable file called `name` in the directories of $PATH.
std::optional<std::filesystem::path> find_in_path(std::string_view name);

}  // namespace vmfork::bench
