// Booting a VM (DESIGN section 8): a fresh address space, the program in
// it, the long-mode boot layout, and every vCPU's start state. The VM is
// created, not started: Monitor::launch starts it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/vm/monitor.h"

namespace vmfork {

// The program is an ELF file (validated by the loader).
Result<std::unique_ptr<Vm>> boot_elf(Monitor& monitor, Engine engine, std::string name,
                                     std::span<const std::byte> elf, const GuestLayout& layout);

enum class MapAllRam : uint8_t { kNo, kYes };

// The program is raw code placed at 1 MiB, its entry (for benchmarks that
// need no guest file). kYes maps every page of RAM to a frame first, as a
// guest that touched all its memory would have it.
Result<std::unique_ptr<Vm>> boot_code(Monitor& monitor, Engine engine, std::string name,
                                      std::span<const std::byte> code, const GuestLayout& layout,
                                      MapAllRam map_all);

}  // namespace vmfork
