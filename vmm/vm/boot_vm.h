// Booting a VM (DESIGN section 8): a fresh address space, the program in
// it, the long-mode boot layout, and every vCPU's start state. The VM is
// created, not started: Monitor::launch starts it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/vm/monitor.h"

namespace vmfork {

// The program is an ELF file (validated by the loader).
Result<std::unique_ptr<Vm>> boot_elf(Monitor& monitor, Engine engine, std::string name,
                                     std::span<const std::byte> elf, const GuestLayout& layout);

// The command line a Linux guest gets when none is given: its console on
// the UART, a reset through the i8042 when it reboots or panics, and no
// probing of what the PC does not have (PCI, the i8042's ports).
inline constexpr std::string_view kDefaultLinuxCmdline =
    "console=ttyS0 reboot=k panic=-1 pci=off nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux "
    "i8042.nopnp i8042.dumbkbd";

// A Linux kernel (bzImage, the x86 boot protocol) with an initrd (may be
// empty) and its command line, on a PC (`layout` from GuestLayout::create_pc):
// the zero page, e820 map and identity map of vmm/boot/linux_boot.h, the MP
// table of vmm/boot/mp_table.h and the generation page of
// vmm/boot/generation_page.h. vCPU 0 starts at the kernel's 64-bit entry;
// the others wait for Linux to start them (INIT, SIPI).
struct LinuxFiles {
  std::span<const std::byte> kernel;
  std::span<const std::byte> initrd;
  std::string_view cmdline;
};
Result<std::unique_ptr<Vm>> boot_linux(Monitor& monitor, Engine engine, std::string name,
                                       const LinuxFiles& files, const GuestLayout& layout);

enum class MapAllRam : uint8_t { kNo, kYes };

// The program is raw code placed at 1 MiB, its entry (for benchmarks that
// need no guest file). kYes maps every page of RAM to a frame first, as a
// guest that touched all its memory would have it.
Result<std::unique_ptr<Vm>> boot_code(Monitor& monitor, Engine engine, std::string name,
                                      std::span<const std::byte> code, const GuestLayout& layout,
                                      MapAllRam map_all);

}  // namespace vmfork
