#include "vmm/boot/boot_layout.h"

#include <fmt/format.h>

#include <cassert>
#include <string>

#include "vmm/boot/boot_info.h"
#include "vmm/boot/exception_handlers.h"
#include "vmm/boot/gdt.h"
#include "vmm/boot/monitor_area.h"
#include "vmm/boot/page_tables.h"
#include "vmm/boot/x86_bits.h"

namespace vmfork {
namespace {

Result<void> check_image(const AddressSpace& space, const GuestLayout& layout,
                         const BootImage& image) {
  if (space.ram_bytes() != layout.ram_bytes()) {
    return make_error(ErrorCode::kInvalidArgument, "address space " + space.name() + " has " +
                                                       std::to_string(space.ram_bytes()) +
                                                       " bytes of RAM, the layout " +
                                                       std::to_string(layout.ram_bytes()));
  }
  if (image.entry < layout.image_base() || image.entry >= layout.stacks_bottom()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "entry point " + fmt::format("{:#x}", image.entry.value()) +
                          " is outside [1 MiB, " +
                          fmt::format("{:#x}", layout.stacks_bottom().value()) + ")");
  }
  if (image.free_base.page_offset() != 0 || image.free_base < layout.image_base() ||
      image.free_base > image.free_end || image.free_end != layout.stacks_bottom()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "free range [" + fmt::format("{:#x}", image.free_base.value()) + ", " +
                          fmt::format("{:#x}", image.free_end.value()) +
                          ") must start on a 4 KiB boundary at or above 1 MiB and end at the "
                          "stacks, " +
                          fmt::format("{:#x}", layout.stacks_bottom().value()));
  }
  return Ok{};
}

}  // namespace

VcpuBootState initial_vcpu_state(const GuestLayout& layout, Gpa entry, uint32_t vcpu) {
  assert(vcpu < layout.vcpu_count());
  VcpuBootState state;
  state.rip = entry.value();
  state.regs.rdi = vcpu;
  state.regs.rsi = kBootInfoGpa.value();
  // The top of the stack itself: the first push writes just below it. For
  // vCPU 0 that is the RAM size, one past the last byte of RAM.
  state.regs.rsp = layout.stack_top(vcpu).value();
  state.rflags = x86::kRflagsReserved1;  // IF = 0
  state.cr0 = x86::kCr0Pe | x86::kCr0Mp | x86::kCr0Et | x86::kCr0Ne | x86::kCr0Wp | x86::kCr0Pg;
  state.cr3 = kPml4Gpa.value();
  state.cr4 = x86::kCr4Pae | x86::kCr4Osfxsr | x86::kCr4Osxmmexcpt;
  state.efer = x86::kEferLme | x86::kEferLma;
  state.cs = flat_code_segment();
  state.ds = state.es = state.fs = state.gs = state.ss = flat_data_segment();
  state.gdtr = {.base = kGdtGpa.value(), .limit = kGdtLimit};
  state.idtr = {.base = 0, .limit = 0};
  return state;
}

Result<std::vector<VcpuBootState>> write_boot_layout(AddressSpace& space, const GuestLayout& layout,
                                                     const BootImage& image) {
  if (Result<void> checked = check_image(space, layout, image); !checked) return checked.error();
  if (Result<void> tables = write_identity_page_tables(space, layout); !tables) {
    return tables.error();
  }
  if (Result<void> gdt = write_gdt(space); !gdt) return gdt.error();
  if (Result<void> idt = write_exception_handlers(space); !idt) return idt.error();
  const BootInfo info{.vcpu_count = layout.vcpu_count(),
                      .ram_bytes = layout.ram_bytes(),
                      .clone_id = 0,
                      .free_base = image.free_base,
                      .free_end = image.free_end};
  if (Result<void> written = write_boot_info(space, info); !written) return written.error();

  std::vector<VcpuBootState> vcpus;
  vcpus.reserve(layout.vcpu_count());
  for (uint32_t i = 0; i < layout.vcpu_count(); ++i) {
    vcpus.push_back(initial_vcpu_state(layout, image.entry, i));
  }
  return vcpus;
}

}  // namespace vmfork
