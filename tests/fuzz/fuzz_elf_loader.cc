// libFuzzer target: the input is a guest ELF file, booted as `vmfork run` boots one (vm/boot_vm.cc
// boot_elf): a fresh address space of the layout's RAM, load_elf, then write_boot_layout.
//
// Properties, beyond "no crash, no leak, no hang" (ASan, UBSan, LeakSanitizer, libFuzzer's
// timeout):
//   - a refused file gets a message and leaves the space untouched (load_elf writes nothing
//     unless the whole file is valid);
//   - a loaded file keeps every promise of DESIGN section 8: segments in [1 MiB, stacks), sorted
//     and disjoint, the file bytes in the guest and zeros after them, the entry in an executable
//     segment, free_base page aligned and in [highest segment end, free_end];
//   - a loaded file boots: the boot layout is written and vCPU i starts at the entry with RDI = i;
//   - every frame comes back: after the space is gone and reclaimed, the pool is empty again.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "tests/fuzz/fuzz_check.h"
#include "vmm/boot/boot_info.h"
#include "vmm/boot/boot_layout.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/loader/elf_loader.h"

namespace vmfork::fuzz {
namespace {

// Small enough to reclaim quickly, large enough for a segment of a few MiB past 1 MiB.
constexpr uint64_t kRamBytes = uint64_t{4} << 20;
constexpr uint32_t kVcpus = 3;
constexpr uint64_t kPoolBytes = uint64_t{64} << 20;
// A segment's zero tail is read back whole up to this size, and only at its ends beyond it.
constexpr uint64_t kZeroCheckBytes = uint64_t{64} << 10;

template <class T>
T must(Result<T> result, const char* what) {
  FUZZ_CHECK(result.ok(), "%s: %s", what, result.error().message.c_str());
  return std::move(result).value();
}

struct Fixture {
  std::unique_ptr<GuestMemory> memory = must(
      GuestMemory::create({.pool_bytes = kPoolBytes, .populate = Populate::kOnDemand}), "pool");
  GuestLayout layout = must(GuestLayout::create(kRamBytes, kVcpus), "layout");
};

Fixture& fixture() {
  static Fixture* const f = new Fixture;  // never destroyed: libFuzzer may exit at any point
  return *f;
}

std::vector<std::byte> read_guest(const AddressSpace& space, Gpa at, uint64_t bytes) {
  std::vector<std::byte> out(bytes);
  const Result<void> read = space.read(at, out);
  FUZZ_CHECK(read.ok(), "reading back %#llx: %s", static_cast<unsigned long long>(at.value()),
             read.error().message.c_str());
  return out;
}

// Byte comparisons go through memcmp: a byte loop would be instrumented for libFuzzer,
// comparison by comparison, and cost more than the load.
void check_zero(const AddressSpace& space, Gpa at, uint64_t bytes) {
  static const std::vector<std::byte> zeros(kZeroCheckBytes);
  const std::vector<std::byte> seen = read_guest(space, at, bytes);
  FUZZ_CHECK(bytes == 0 || std::memcmp(seen.data(), zeros.data(), bytes) == 0,
             "the zero tail at %#llx (+%#llx) is not zero",
             static_cast<unsigned long long>(at.value()), static_cast<unsigned long long>(bytes));
}

void check_loaded(std::span<const std::byte> file, const AddressSpace& space,
                  const GuestLayout& layout, const LoadedElf& elf) {
  FUZZ_CHECK(!elf.segments.empty(), "loaded without a segment");
  bool entry_executable = false;
  for (size_t i = 0; i < elf.segments.size(); ++i) {
    const ElfSegment& s = elf.segments[i];
    FUZZ_CHECK(s.start >= layout.image_base() && s.end() <= layout.stacks_bottom(),
               "segment %zu [%#llx, %#llx) outside the program area", i,
               static_cast<unsigned long long>(s.start.value()),
               static_cast<unsigned long long>(s.end().value()));
    FUZZ_CHECK(s.start < s.end(), "segment %zu is empty", i);
    FUZZ_CHECK(s.file_bytes <= s.memory_bytes, "segment %zu: file bytes above memory bytes", i);
    FUZZ_CHECK(s.file_offset <= file.size() && s.file_bytes <= file.size() - s.file_offset,
               "segment %zu reads past the file", i);
    if (i > 0)
      FUZZ_CHECK(elf.segments[i - 1].end() <= s.start, "segments %zu and %zu overlap", i - 1, i);
    entry_executable |= s.executable && s.start <= elf.entry && elf.entry < s.end();

    const std::vector<std::byte> in_guest = read_guest(space, s.start, s.file_bytes);
    FUZZ_CHECK(s.file_bytes == 0 ||
                   std::memcmp(in_guest.data(), file.data() + s.file_offset, s.file_bytes) == 0,
               "segment %zu: the guest's bytes differ from the file's", i);
    const Gpa tail = s.start + s.file_bytes;
    const uint64_t tail_bytes = s.memory_bytes - s.file_bytes;
    if (tail_bytes <= kZeroCheckBytes) {
      check_zero(space, tail, tail_bytes);
    } else {
      check_zero(space, tail, kZeroCheckBytes / 2);
      check_zero(space, Gpa(s.end().value() - kZeroCheckBytes / 2), kZeroCheckBytes / 2);
    }
  }
  FUZZ_CHECK(entry_executable, "entry %#llx is in no executable segment",
             static_cast<unsigned long long>(elf.entry.value()));
  FUZZ_CHECK(elf.free_base.page_offset() == 0, "free_base is not page aligned");
  FUZZ_CHECK(elf.segments.back().end() <= elf.free_base && elf.free_base <= elf.free_end,
             "free_base %#llx outside [highest end, free_end]",
             static_cast<unsigned long long>(elf.free_base.value()));
  FUZZ_CHECK(elf.free_end == layout.stacks_bottom(), "free_end is not the stacks' bottom");
}

void check_boot(AddressSpace& space, const GuestLayout& layout, const LoadedElf& elf) {
  const std::vector<VcpuBootState> vcpus =
      must(write_boot_layout(space, layout, {elf.entry, elf.free_base, elf.free_end}),
           "a loaded file must boot");
  FUZZ_CHECK(vcpus.size() == layout.vcpu_count(), "%zu vCPU states", vcpus.size());
  for (uint32_t i = 0; i < vcpus.size(); ++i) {
    FUZZ_CHECK(vcpus[i].rip == elf.entry.value() && vcpus[i].regs.rdi == i &&
                   vcpus[i].regs.rsp == layout.stack_top(i).value(),
               "vCPU %u does not start at the entry with its index and stack", i);
  }
  const BootInfo info = must(read_boot_info(space), "boot info");
  FUZZ_CHECK(info.free_base == elf.free_base && info.free_end == elf.free_end &&
                 info.ram_bytes == layout.ram_bytes() && info.vcpu_count == layout.vcpu_count(),
             "the boot info differs from the load");
}

}  // namespace
}  // namespace vmfork::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmfork;
  using namespace vmfork::fuzz;
  Fixture& f = fixture();
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  {
    std::unique_ptr<AddressSpace> space = must(f.memory->create_space("fuzz", kRamBytes), "space");
    const Result<LoadedElf> loaded = load_elf(file, *space, f.layout);
    if (loaded.ok()) {
      check_loaded(file, *space, f.layout, loaded.value());
      check_boot(*space, f.layout, loaded.value());
    } else {
      const Error& error = loaded.error();
      FUZZ_CHECK(error.code == ErrorCode::kInvalidArgument && error.message.starts_with("ELF: "),
                 "refused with %s: %s", to_string(error.code), error.message.c_str());
      const SpaceAccounting touched = space->account();
      FUZZ_CHECK(touched.data_exclusive == 0 && touched.data_shared == 0,
                 "a refused file left %llu data pages in the space",
                 static_cast<unsigned long long>(touched.data_exclusive));
    }
  }
  // With no vCPU online nothing holds an epoch back: every frame is free again.
  for (int i = 0; i < 8 && f.memory->reclaimer().pending() > 0; ++i)
    f.memory->reclaimer().collect();
  const FrameCounts counts = f.memory->frame_counts();
  FUZZ_CHECK(counts.data == 0 && counts.table == 0 && counts.reclaiming == 0,
             "frames leaked: %llu data, %llu table, %llu reclaiming",
             static_cast<unsigned long long>(counts.data),
             static_cast<unsigned long long>(counts.table),
             static_cast<unsigned long long>(counts.reclaiming));
  return 0;
}
