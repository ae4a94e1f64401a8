// The --engine and --pool options of the commands that run VMs.
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

#include "base/result.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork::cli {

enum class EngineChoice : uint8_t { kAuto, kSoft, kKvm };

// Which engine runs the guests, or why none can. The kvm engine's own
// checks (capabilities, userfaultfd) run when its first VM is created.
Result<Engine> choose_engine(EngineChoice wanted);

// Host memory available now, whole MiB: the default frame pool. Guests that
// write more than this fail with "frame pool exhausted" instead of waking
// the OOM killer.
uint64_t default_pool_bytes();

// Adds --engine (auto|soft|kvm) and --pool SIZE to `command`.
void add_engine_options(CLI::App& command, EngineChoice& engine, uint64_t& pool_bytes);

}  // namespace vmfork::cli
