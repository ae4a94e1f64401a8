// Builds small valid ELF64 x86-64 executables in memory for the loader tests,
// and patches single fields of one so a test can break exactly one rule.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace vmfork::testing {

inline constexpr uint64_t kProgramBase = uint64_t{1} << 20;  // 1 MiB

struct ElfBuilder {
  struct Segment {
    uint32_t type = PT_LOAD;
    uint32_t flags = PF_R;  // p_flags
    uint64_t paddr = 0;
    std::vector<std::byte> data;  // p_filesz bytes
    uint64_t memsz = 0;           // 0: data.size()
  };

  uint64_t entry = kProgramBase;
  std::vector<Segment> segments;

  // Code (hlt; jmp back) at 1 MiB, data at 1 MiB + 64 KiB with a .bss tail:
  // the shape of a linked guest program.
  static ElfBuilder typical() {
    ElfBuilder elf;
    elf.segments.push_back({.type = PT_LOAD,
                            .flags = PF_R | PF_X,
                            .paddr = kProgramBase,
                            .data = bytes({0xf4, 0xeb, 0xfd}),
                            .memsz = 0});
    elf.segments.push_back({.type = PT_LOAD,
                            .flags = PF_R | PF_W,
                            .paddr = kProgramBase + 0x10000,
                            .data = bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}),
                            .memsz = 0x3000});
    elf.segments.push_back(
        {.type = PT_GNU_STACK, .flags = PF_R | PF_W, .paddr = 0, .data = {}, .memsz = 0});
    return elf;
  }

  static std::vector<std::byte> bytes(std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (const int v : values)
      out.push_back(static_cast<std::byte>(v));
    return out;
  }

  // Header at 0, program headers right after it, then each segment's bytes.
  std::vector<std::byte> build() const {
    const uint64_t table_end = sizeof(Elf64_Ehdr) + segments.size() * sizeof(Elf64_Phdr);
    std::vector<std::byte> file(table_end);

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<uint16_t>(segments.size());
    std::memcpy(file.data(), &eh, sizeof(eh));

    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& s = segments[i];
      Elf64_Phdr ph{};
      ph.p_type = s.type;
      ph.p_flags = s.flags;
      ph.p_offset = s.data.empty() ? 0 : file.size();
      ph.p_vaddr = s.paddr;
      ph.p_paddr = s.paddr;
      ph.p_filesz = s.data.size();
      ph.p_memsz = s.memsz != 0 ? s.memsz : s.data.size();
      ph.p_align = 0x1000;
      std::memcpy(file.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), &ph, sizeof(ph));
      file.insert(file.end(), s.data.begin(), s.data.end());
    }
    return file;
  }
};

// Overwrites the field at `offset` (offsetof(Elf64_Ehdr, ...), or
// program_header(i) + offsetof(Elf64_Phdr, ...)).
template <class T>
void patch(std::vector<std::byte>& file, size_t offset, T value) {
  std::memcpy(file.data() + offset, &value, sizeof(value));
}

inline size_t program_header(size_t index) {
  return sizeof(Elf64_Ehdr) + index * sizeof(Elf64_Phdr);
}

}  // namespace vmfork::testing
