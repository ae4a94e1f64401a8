#include "vmm/vm/boot_vm.h"

#include <vector>

#include "vmm/boot/boot_layout.h"
#include "vmm/boot/generation_page.h"
#include "vmm/boot/linux_boot.h"
#include "vmm/boot/mp_table.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/loader/linux_image.h"

namespace vmfork {

namespace {

// Writes the boot layout into `space` and creates the VM around it.
Result<std::unique_ptr<Vm>> finish_boot(Monitor& monitor, Engine engine, std::string name,
                                        std::unique_ptr<AddressSpace> space,
                                        const GuestLayout& layout, const BootImage& image) {
  Result<Hypervisor*> hypervisor = monitor.hypervisor(engine);
  if (!hypervisor) return hypervisor.error();
  Result<std::vector<VcpuBootState>> boot = write_boot_layout(*space, layout, image);
  if (!boot) return boot.error();
  std::vector<VcpuSnapshot> vcpus;
  for (const VcpuBootState& state : *boot)
    vcpus.push_back({(*hypervisor)->start_state(state), false});
  return Vm::create(monitor, **hypervisor, std::move(name), std::move(space), layout, vcpus,
                    std::nullopt);
}

}  // namespace

Result<std::unique_ptr<Vm>> boot_elf(Monitor& monitor, Engine engine, std::string name,
                                     std::span<const std::byte> elf, const GuestLayout& layout) {
  Result<std::unique_ptr<AddressSpace>> space =
      monitor.memory().create_space(name, layout.ram_bytes());
  if (!space) return space.error();
  Result<LoadedElf> loaded = load_elf(elf, **space, layout);
  if (!loaded) return loaded.error();
  return finish_boot(monitor, engine, std::move(name), std::move(*space), layout,
                     {loaded->entry, loaded->free_base, loaded->free_end});
}

Result<std::unique_ptr<Vm>> boot_linux(Monitor& monitor, Engine engine, std::string name,
                                       const LinuxFiles& files, const GuestLayout& layout) {
  if (layout.platform() != Platform::kPc) {
    return make_error(ErrorCode::kInternal, "a Linux kernel boots on a PC layout only");
  }
  Result<LinuxImage> image = parse_linux_image(files.kernel);
  if (!image) return image.error();
  Result<Hypervisor*> hypervisor = monitor.hypervisor(engine);
  if (!hypervisor) return hypervisor.error();
  Result<std::unique_ptr<AddressSpace>> space =
      monitor.memory().create_space(name, layout.ram_bytes());
  if (!space) return space.error();
  Result<LinuxBoot> boot =
      write_linux_boot(**space, layout.ram_bytes(), *image, files.initrd, files.cmdline);
  if (!boot) return boot.error();
  if (Result<void> mp = write_mp_table(**space, layout.vcpu_count()); !mp) return mp.error();
  if (Result<void> page = write_generation_page(**space, {}); !page) return page.error();
  // The application processors' state is Linux's to set (INIT, SIPI).
  const std::vector<VcpuSnapshot> vcpus(layout.vcpu_count(),
                                        {(*hypervisor)->start_state(boot->bsp), false});
  return Vm::create(monitor, **hypervisor, std::move(name), std::move(*space), layout, vcpus,
                    std::nullopt);
}

Result<std::unique_ptr<Vm>> boot_code(Monitor& monitor, Engine engine, std::string name,
                                      std::span<const std::byte> code, const GuestLayout& layout,
                                      MapAllRam map_all) {
  Result<std::unique_ptr<AddressSpace>> space =
      monitor.memory().create_space(name, layout.ram_bytes());
  if (!space) return space.error();
  if (map_all == MapAllRam::kYes) {
    if (Result<void> mapped = (*space)->populate(Gpa(0), layout.ram_bytes()); !mapped) {
      return mapped.error();
    }
  }
  const Gpa entry = layout.image_base();
  if (Result<void> written = (*space)->write(entry, code); !written) return written.error();
  const uint64_t code_end = entry.value() + code.size();
  const Gpa free_base((code_end + kPageSize - 1) & ~(kPageSize - 1));
  return finish_boot(monitor, engine, std::move(name), std::move(*space), layout,
                     {entry, free_base, layout.stacks_bottom()});
}

}  // namespace vmfork
