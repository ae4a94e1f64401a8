#include "vmm/loader/elf_image.h"

#include <fmt/format.h>

#include <elf.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

namespace vmfork {
namespace {

// Headers are copied out of the file with memcpy (the file need not be
// aligned) and read in host order, which is the file's once EI_DATA says
// little-endian.
static_assert(std::endian::native == std::endian::little,
              "the loader reads ELF fields in host order");

Error elf_error(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, "ELF: " + what);
}

// a + b, or false if it does not fit in 64 bits.
bool add(uint64_t a, uint64_t b, uint64_t& sum) {
  return !__builtin_add_overflow(a, b, &sum);
}

Result<Elf64_Ehdr> parse_header(std::span<const std::byte> file) {
  if (file.size() < SELFMAG || std::memcmp(file.data(), ELFMAG, SELFMAG) != 0) {
    return elf_error("bad magic: not an ELF file (expected 7f 45 4c 46)");
  }
  if (file.size() < sizeof(Elf64_Ehdr)) {
    return elf_error("file of " + std::to_string(file.size()) +
               " bytes is shorter than an ELF64 header (64 bytes)");
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof(eh));
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
    return elf_error("class " + std::to_string(eh.e_ident[EI_CLASS]) + " is not ELFCLASS64 (2)");
  }
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return elf_error("data encoding " + std::to_string(eh.e_ident[EI_DATA]) +
               " is not little-endian (ELFDATA2LSB, 1)");
  }
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
    return elf_error("version " + std::to_string(eh.e_ident[EI_VERSION]) + "/" +
               std::to_string(eh.e_version) + " is not EV_CURRENT (1)");
  }
  if (eh.e_machine != EM_X86_64) {
    return elf_error("machine " + std::to_string(eh.e_machine) + " is not x86-64 (EM_X86_64, 62)");
  }
  if (eh.e_type != ET_EXEC) {
    // No relocation happens: shared objects and PIEs (ET_DYN) are refused too.
    return elf_error("type " + std::to_string(eh.e_type) +
               " is not ET_EXEC (2); only static executables linked at fixed addresses load");
  }
  if (eh.e_ehsize != sizeof(Elf64_Ehdr)) {
    return elf_error("header size " + std::to_string(eh.e_ehsize) + " is not 64");
  }
  return eh;
}

Result<std::vector<Elf64_Phdr>> parse_program_headers(std::span<const std::byte> file,
                                                      const Elf64_Ehdr& eh) {
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
    return elf_error("program header entry size " + std::to_string(eh.e_phentsize) + " is not 56");
  }
  if (eh.e_phnum == PN_XNUM) {
    return elf_error("extended program header numbering (e_phnum = PN_XNUM) is not supported");
  }
  if (eh.e_phnum == 0) return elf_error("no program headers, so no PT_LOAD segment");
  // e_phnum < 2^16 and e_phentsize == 56: the product cannot overflow.
  const uint64_t table_bytes = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  uint64_t table_end = 0;
  if (!add(eh.e_phoff, table_bytes, table_end) || table_end > file.size()) {
    return elf_error("program header table [" + fmt::format("{:#x}", eh.e_phoff) + ", +" +
               fmt::format("{:#x}", table_bytes) + ") extends past the end of the file (" +
               std::to_string(file.size()) + " bytes)");
  }
  std::vector<Elf64_Phdr> headers(eh.e_phnum);
  std::memcpy(headers.data(), file.data() + eh.e_phoff, table_bytes);
  return headers;
}

Result<ElfSegment> parse_load_segment(std::span<const std::byte> file, const Elf64_Phdr& ph,
                                      size_t index, const GuestLayout& layout) {
  const std::string name = "PT_LOAD segment " + std::to_string(index) + " ";
  uint64_t file_end = 0;
  if (!add(ph.p_offset, ph.p_filesz, file_end) || file_end > file.size()) {
    return elf_error(name + "file range [" + fmt::format("{:#x}", ph.p_offset) + ", +" +
               fmt::format("{:#x}", ph.p_filesz) + ") extends past the end of the file (" +
               std::to_string(file.size()) + " bytes)");
  }
  if (ph.p_filesz > ph.p_memsz) {
    return elf_error(name + "has p_filesz " + fmt::format("{:#x}", ph.p_filesz) +
               " larger than p_memsz " + fmt::format("{:#x}", ph.p_memsz));
  }
  if (ph.p_vaddr != ph.p_paddr) {
    // The guest runs with RAM identity-mapped: code linked at another
    // virtual address than where it is loaded would run at the wrong place.
    return elf_error(name + "has p_vaddr " + fmt::format("{:#x}", ph.p_vaddr) +
               " different from p_paddr " + fmt::format("{:#x}", ph.p_paddr) +
               " (guest RAM is identity-mapped)");
  }
  uint64_t memory_end = 0;
  if (!add(ph.p_paddr, ph.p_memsz, memory_end)) {
    return elf_error(name + "[" + fmt::format("{:#x}", ph.p_paddr) + ", +" +
               fmt::format("{:#x}", ph.p_memsz) + ") wraps around the address space");
  }
  if (ph.p_paddr < layout.image_base().value() || memory_end > layout.stacks_bottom().value()) {
    return elf_error(name + "[" + fmt::format("{:#x}", ph.p_paddr) + ", " +
               fmt::format("{:#x}", memory_end) + ") is outside the guest's program area [1 MiB, " +
               fmt::format("{:#x}", layout.stacks_bottom().value()) +
               ") (below: the monitor's, above: stacks)");
  }
  return ElfSegment{.start = Gpa(ph.p_paddr),
                    .file_offset = ph.p_offset,
                    .file_bytes = ph.p_filesz,
                    .memory_bytes = ph.p_memsz,
                    .readable = (ph.p_flags & PF_R) != 0,
                    .writable = (ph.p_flags & PF_W) != 0,
                    .executable = (ph.p_flags & PF_X) != 0};
}

}  // namespace

Result<ElfImage> parse_elf(std::span<const std::byte> file, const GuestLayout& layout) {
  Result<Elf64_Ehdr> eh = parse_header(file);
  if (!eh) return eh.error();
  Result<std::vector<Elf64_Phdr>> headers = parse_program_headers(file, *eh);
  if (!headers) return headers.error();

  ElfImage image{.entry = Gpa(eh->e_entry), .segments = {}};
  bool any_load = false;
  for (size_t i = 0; i < headers->size(); ++i) {
    const Elf64_Phdr& ph = (*headers)[i];
    if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC) {
      return elf_error("program header " + std::to_string(i) +
                 " asks for dynamic linking (PT_INTERP or PT_DYNAMIC); only static "
                 "executables load");
    }
    if (ph.p_type != PT_LOAD) continue;  // notes, GNU_STACK, TLS...: nothing to load
    any_load = true;
    Result<ElfSegment> segment = parse_load_segment(file, ph, i, layout);
    if (!segment) return segment.error();
    // An empty segment occupies no memory: nothing to load or to overlap.
    if (segment->memory_bytes > 0) image.segments.push_back(*segment);
  }
  if (!any_load) return elf_error("no PT_LOAD segment");
  if (image.segments.empty()) return elf_error("every PT_LOAD segment is empty (p_memsz = 0)");

  std::sort(image.segments.begin(), image.segments.end(),
            [](const ElfSegment& a, const ElfSegment& b) { return a.start < b.start; });
  for (size_t i = 1; i < image.segments.size(); ++i) {
    const ElfSegment& low = image.segments[i - 1];
    const ElfSegment& high = image.segments[i];
    if (high.start < low.end()) {
      return elf_error("PT_LOAD segments [" + fmt::format("{:#x}", low.start.value()) + ", " +
                 fmt::format("{:#x}", low.end().value()) + ") and [" +
                 fmt::format("{:#x}", high.start.value()) + ", " +
                 fmt::format("{:#x}", high.end().value()) + ") overlap");
    }
  }

  const auto holds_entry = [&](const ElfSegment& s) {
    return s.start <= image.entry && image.entry < s.end();
  };
  const auto segment = std::find_if(image.segments.begin(), image.segments.end(), holds_entry);
  if (segment == image.segments.end()) {
    return elf_error("entry point " + fmt::format("{:#x}", image.entry.value()) +
               " is in no PT_LOAD segment");
  }
  if (!segment->executable) {
    return elf_error("entry point " + fmt::format("{:#x}", image.entry.value()) +
               " is in the segment at " + fmt::format("{:#x}", segment->start.value()) +
               ", which is not executable (no PF_X)");
  }
  return image;
}

}  // namespace vmfork
