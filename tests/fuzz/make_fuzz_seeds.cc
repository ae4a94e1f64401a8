// Writes the seed corpora of the fuzz targets:
//
//   make_fuzz_seeds CORPUS_DIR [GUEST.elf...]
//
// into CORPUS_DIR/fuzz_elf_loader/seed-*.elf and CORPUS_DIR/fuzz_interpreter/seed-*.
//   - ELF loader: small executables from the loader tests' ElfBuilder, valid, truncated, and
//     each breaking one rule of DESIGN section 8, plus the guest ELF files given.
//   - Interpreter: short programs of the instruction mix the guests use (loops, calls, the stack,
//     locked operations, strings, port I/O, segment bases, page-crossing accesses, self-modifying
//     code, faults), each with a register state that points into RAM; and each guest given, loaded
//     by the ELF loader at 1 MiB with its boot info at kRamBase and RSP at the top of RAM, so that
//     the fuzzer starts from the guests' own code.
// The committed corpus (tests/fuzz/corpus) came from this program and build/guests/{hello,
// spinlock_counter,forkdemo,memhog}.elf; libFuzzer's merges add files named by their SHA-1.
#include <elf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "tests/fuzz/guarded_environment.h"
#include "tests/fuzz/interpreter_input.h"
#include "tests/loader/elf_builder.h"
#include "vmm/boot/boot_info.h"
#include "vmm/boot/guest_layout.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/loader/read_file.h"

namespace vmfork::fuzz {
namespace {

namespace fs = std::filesystem;
using testing::ElfBuilder;
using testing::patch;
using testing::program_header;
using Gpr = soft::Gpr;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "make_fuzz_seeds: %s\n", message.c_str());
  std::exit(1);
}

void write_file(const fs::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) die("cannot write " + path.string());
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  return ElfBuilder::bytes(values);
}

// ---------------------------------------------------------------------------------------------
// ELF loader seeds

void elf_seeds(const fs::path& dir) {
  const std::vector<std::byte> typical = ElfBuilder::typical().build();
  write_file(dir / "seed-typical.elf", typical);

  ElfBuilder minimal;
  minimal.segments.push_back({.type = PT_LOAD,
                              .flags = PF_R | PF_X,
                              .paddr = testing::kProgramBase,
                              .data = bytes({0xf4, 0xeb, 0xfd}),  // hlt; jmp back
                              .memsz = 0});
  write_file(dir / "seed-minimal.elf", minimal.build());

  // Truncated: the magic only, a short header, the program headers without the data.
  for (const size_t size : {size_t{4}, size_t{63}, program_header(1), typical.size() - 1}) {
    write_file(
        dir / ("seed-typical-cut-" + std::to_string(size) + ".elf"),
        std::vector<std::byte>(typical.begin(), typical.begin() + static_cast<ptrdiff_t>(size)));
  }

  // One rule broken each.
  auto broken = [&](const char* name, auto&& change) {
    std::vector<std::byte> file = typical;
    change(file);
    write_file(dir / (std::string("seed-bad-") + name + ".elf"), file);
  };
  broken("class32", [](auto& f) { f[EI_CLASS] = std::byte{ELFCLASS32}; });
  broken("pn-xnum", [](auto& f) { patch<uint16_t>(f, offsetof(Elf64_Ehdr, e_phnum), PN_XNUM); });
  broken("phoff-wraps",
         [](auto& f) { patch<uint64_t>(f, offsetof(Elf64_Ehdr, e_phoff), ~uint64_t{0} - 8); });
  broken("filesz-over-memsz",
         [](auto& f) { patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_memsz), 4); });
  broken("below-1mib", [](auto& f) {
    patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_paddr), 0x8000);
    patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_vaddr), 0x8000);
  });
  broken("memsz-wraps", [](auto& f) {
    patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_memsz), ~uint64_t{0} - 0x1000);
  });
  broken("offset-wraps", [](auto& f) {
    patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_offset), ~uint64_t{0} - 2);
  });
  broken("overlap", [](auto& f) {
    patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_paddr),
                    testing::kProgramBase + 1);
    patch<uint64_t>(f, program_header(1) + offsetof(Elf64_Phdr, p_vaddr),
                    testing::kProgramBase + 1);
  });
  broken("interp", [](auto& f) {
    patch<uint32_t>(f, program_header(2) + offsetof(Elf64_Phdr, p_type), PT_INTERP);
  });
  broken("entry-not-executable", [](auto& f) {
    patch<uint64_t>(f, offsetof(Elf64_Ehdr, e_entry), testing::kProgramBase + 0x10000);
  });
}

// ---------------------------------------------------------------------------------------------
// Interpreter seeds

struct Program {
  const char* name;
  std::vector<std::byte> code;
  uint16_t code_offset = 0;  // where in RAM the code starts (RIP)
  void (*setup)(InterpreterInput&) = nullptr;
};

// Register i points `offset` bytes into RAM.
void in_ram(InterpreterInput& in, Gpr r, uint64_t offset) {
  in.gpr[static_cast<size_t>(r)] = offset;
  in.in_ram |= 1u << static_cast<unsigned>(r);
}

void stack_at_top(InterpreterInput& in) {
  in_ram(in, Gpr::kRsp, kRamBytes - 0x100);
}

std::vector<Program> programs() {
  return {
      {"loop",
       // mov ecx, 100; l: add rax, rcx; imul rdx, rax, 3; dec ecx; jnz l; hlt
       bytes({0xb9, 0x64, 0x00, 0x00, 0x00, 0x48, 0x01, 0xc8, 0x48, 0x6b, 0xd0, 0x03, 0xff, 0xc9,
              0x75, 0xf5, 0xf4}),
       0, nullptr},
      {"stack",
       // push rbp; mov rbp, rsp; sub rsp, 32; mov [rbp-8], rdi; call f; leave; hlt
       // f: push rbx; mov rbx, [rsp+16]; pop rbx; ret
       bytes({0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0x7d, 0xf8, 0xe8, 0x02,
              0x00, 0x00, 0x00, 0xc9, 0xf4, 0x53, 0x48, 0x8b, 0x5c, 0x24, 0x10, 0x5b, 0xc3}),
       0, stack_at_top},
      {"lock",
       // mov eax, 1; lock cmpxchg [rdi], rsi; lock xadd [rdi+8], rax; xchg [rdi+16], rbx;
       // lock bts qword [rdi+24], 5; lock inc dword [rdi+32]; lock add byte [rdi+33], 7;
       // cmpxchg [rdi+40], rcx; mfence; pause; hlt
       bytes({0xb8, 0x01, 0x00, 0x00, 0x00, 0xf0, 0x48, 0x0f, 0xb1, 0x37, 0xf0, 0x48,
              0x0f, 0xc1, 0x47, 0x08, 0x48, 0x87, 0x5f, 0x10, 0xf0, 0x48, 0x0f, 0xba,
              0x6f, 0x18, 0x05, 0xf0, 0xff, 0x47, 0x20, 0xf0, 0x80, 0x47, 0x21, 0x07,
              0x48, 0x0f, 0xb1, 0x4f, 0x28, 0x0f, 0xae, 0xf0, 0xf3, 0x90, 0xf4}),
       0, [](InterpreterInput& in) { in_ram(in, Gpr::kRdi, 0x2000); }},
      {"strings",
       // mov ecx, 100; cld; rep movsb; mov ecx, 10; std; rep stosq; cld; movsq; stosd; hlt
       bytes({0xb9, 0x64, 0x00, 0x00, 0x00, 0xfc, 0xf3, 0xa4, 0xb9, 0x0a, 0x00,
              0x00, 0x00, 0xfd, 0xf3, 0x48, 0xab, 0xfc, 0x48, 0xa5, 0xab, 0xf4}),
       0,
       [](InterpreterInput& in) {
         in_ram(in, Gpr::kRsi, 0x2000);
         in_ram(in, Gpr::kRdi, 0x3000);
         in.gpr[static_cast<size_t>(Gpr::kRax)] = 0x1122334455667788;
       }},
      {"ports",
       // mov dx, 0x3f8; mov al, 'h'; out dx, al; in al, dx; in eax, 0x60; xor eax, eax; cpuid;
       // mov eax, 1; cpuid; rdtsc; out 0xf4, eax; hlt
       bytes({0x66, 0xba, 0xf8, 0x03, 0xb0, 0x68, 0xee, 0xec, 0xe5, 0x60, 0x31, 0xc0, 0x0f,
              0xa2, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x0f, 0x31, 0xe7, 0xf4, 0xf4}),
       0,
       [](InterpreterInput& in) {
         in.port_in_value = 0x12345678;
         in.failing_port = 0x5ff;
       }},
      {"self-modifying",
       // mov ecx, 3; again: lea rdi, [rip+patch]; mov byte [rdi+1], cl; patch: add al, 0;
       // dec ecx; jnz again; hlt
       bytes({0xb9, 0x03, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x3d, 0x03, 0x00, 0x00,
              0x00, 0x88, 0x4f, 0x01, 0x04, 0x00, 0xff, 0xc9, 0x75, 0xf0, 0xf4}),
       0, nullptr},
      {"self-modifying-stos",
       // The decoded-instruction cache must see a string store into cached code:
       // mov ebx, 3; again: lea rdi, [rip+patch]; mov eax, ebx; shl eax, 8; or eax, 4;
       // mov ecx, 2; rep stosw; patch: add al, 0; add al, 0; dec ebx; jnz again; hlt
       bytes({0xbb, 0x03, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x3d, 0x10, 0x00, 0x00, 0x00, 0x89,
              0xd8, 0xc1, 0xe0, 0x08, 0x83, 0xc8, 0x04, 0xb9, 0x02, 0x00, 0x00, 0x00, 0xf3,
              0x66, 0xab, 0x04, 0x00, 0x04, 0x00, 0xff, 0xcb, 0x75, 0xe1, 0xf4}),
       0, nullptr},
      {"self-modifying-movs",
       // ... and a string copy into it, from a data page:
       // mov ebx, 3; again: mov word [rsi], 4; mov byte [rsi+1], bl; lea rdi, [rip+patch];
       // mov ecx, 2; push rsi; rep movsb; pop rsi; patch: add al, 0; dec ebx; jnz again; hlt
       bytes({0xbb, 0x03, 0x00, 0x00, 0x00, 0x66, 0xc7, 0x06, 0x04, 0x00, 0x88, 0x5e,
              0x01, 0x48, 0x8d, 0x3d, 0x09, 0x00, 0x00, 0x00, 0xb9, 0x02, 0x00, 0x00,
              0x00, 0x56, 0xf3, 0xa4, 0x5e, 0x04, 0x00, 0xff, 0xcb, 0x75, 0xe2, 0xf4}),
       0,
       [](InterpreterInput& in) {
         stack_at_top(in);
         in_ram(in, Gpr::kRsi, 0x2000);
       }},
      // ... and locked stores into it, one kind per seed (any of them drops the whole cache):
      // mov ecx, 3; again: lock add byte [rip+p+2], 1; p: add bl, 0; dec ecx; jnz again; hlt
      {"self-modifying-lock-add",
       bytes({0xb9, 0x03, 0x00, 0x00, 0x00, 0xf0, 0x80, 0x05, 0x02, 0x00, 0x00,
              0x00, 0x01, 0x80, 0xc3, 0x00, 0xff, 0xc9, 0x75, 0xf1, 0xf4}),
       0, nullptr},
      // mov ecx, 3; again: mov dl, cl; xchg byte [rip+p+2], dl; p: add bl, 0; dec ecx;
      // jnz again; hlt
      {"self-modifying-xchg",
       bytes({0xb9, 0x03, 0x00, 0x00, 0x00, 0x88, 0xca, 0x86, 0x15, 0x02, 0x00,
              0x00, 0x00, 0x80, 0xc3, 0x00, 0xff, 0xc9, 0x75, 0xf1, 0xf4}),
       0, nullptr},
      // mov ecx, 3; again: mov al, byte [rip+p+2]; mov dl, cl; lock cmpxchg byte [rip+p+2], dl;
      // p: add bl, 0; dec ecx; jnz again; hlt
      {"self-modifying-cmpxchg", bytes({0xb9, 0x03, 0x00, 0x00, 0x00, 0x8a, 0x05, 0x0c, 0x00, 0x00,
                                        0x00, 0x88, 0xca, 0xf0, 0x0f, 0xb0, 0x15, 0x02, 0x00, 0x00,
                                        0x00, 0x80, 0xc3, 0x00, 0xff, 0xc9, 0x75, 0xe9, 0xf4}),
       0, nullptr},
      {"arith",
       // mov rax, -7; mov rcx, 3; cqo; idiv rcx; mov rbx, rax; shl rbx, cl; sar rdx, 1;
       // rol r8, 5; ror r9d, cl; bsf r10, rbx; bsr r11, rbx; popcnt r12, rbx; tzcnt r13, rbx;
       // lzcnt r14, rbx; bswap r15; setc al; cmovz rbx, rcx; adc rax, rbx; sbb rdx, 1; neg rdx;
       // not rax; test al, 0x40; movzx esi, al; movsx rdi, byte [rsp]; movsxd r8, dword [rsp+8];
       // lahf; sahf; cbw; cdqe; mul rcx; xor ecx, ecx; div rcx (#DE)
       bytes({0x48, 0xc7, 0xc0, 0xf9, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc1, 0x03, 0x00, 0x00, 0x00,
              0x48, 0x99, 0x48, 0xf7, 0xf9, 0x48, 0x89, 0xc3, 0x48, 0xd3, 0xe3, 0x48, 0xd1, 0xfa,
              0x49, 0xc1, 0xc0, 0x05, 0x41, 0xd3, 0xc9, 0x4c, 0x0f, 0xbc, 0xd3, 0x4c, 0x0f, 0xbd,
              0xdb, 0xf3, 0x4c, 0x0f, 0xb8, 0xe3, 0xf3, 0x4c, 0x0f, 0xbc, 0xeb, 0xf3, 0x4c, 0x0f,
              0xbd, 0xf3, 0x49, 0x0f, 0xcf, 0x0f, 0x92, 0xc0, 0x48, 0x0f, 0x44, 0xd9, 0x48, 0x11,
              0xd8, 0x48, 0x83, 0xda, 0x01, 0x48, 0xf7, 0xda, 0x48, 0xf7, 0xd0, 0xa8, 0x40, 0x0f,
              0xb6, 0xf0, 0x48, 0x0f, 0xbe, 0x3c, 0x24, 0x4c, 0x63, 0x44, 0x24, 0x08, 0x9f, 0x9e,
              0x66, 0x98, 0x48, 0x98, 0x48, 0xf7, 0xe1, 0x31, 0xc9, 0x48, 0xf7, 0xf1}),
       0, stack_at_top},
      {"segment-bases",
       // mov rax, fs:[8]; mov gs:[16], rax; lea rbx, fs:[rax+8]; push qword gs:[0];
       // pop qword fs:[24]; hlt
       bytes({0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00, 0x65, 0x48, 0x89, 0x04, 0x25,
              0x10, 0x00, 0x00, 0x00, 0x64, 0x48, 0x8d, 0x58, 0x08, 0x65, 0xff, 0x34, 0x25, 0x00,
              0x00, 0x00, 0x00, 0x64, 0x8f, 0x04, 0x25, 0x18, 0x00, 0x00, 0x00, 0xf4}),
       0,
       [](InterpreterInput& in) {
         stack_at_top(in);
         in.fs_base = 0x4000;
         in.gs_base = 0x5ff8;
         in.in_ram |= 3u << 16;
       }},
      {"page-crossing",
       // At the end of page 0, so the first instruction's bytes continue on page 1:
       // movabs rax, 0x1122334455667788; mov [rdi], rax; mov rbx, [rdi]; add [rdi], ebx;
       // lock inc dword [rdi+2] (a locked access across a page: refused)
       bytes({0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x48,
              0x89, 0x07, 0x48, 0x8b, 0x1f, 0x01, 0x1f, 0xf0, 0xff, 0x47, 0x02}),
       0xffb, [](InterpreterInput& in) { in_ram(in, Gpr::kRdi, 0x2ffc); }},
      {"write-refused",
       // mov [rdi], rax (page 2 is read-only); jmp [rsi]
       bytes({0x48, 0x89, 0x07, 0xff, 0x26}), 0,
       [](InterpreterInput& in) {
         in_ram(in, Gpr::kRdi, 0x2008);
         in.read_only_pages = 1u << 2;
       }},
      {"outside-ram",
       // jmp [rsi] (rsi outside RAM)
       bytes({0xff, 0x26}), 0,
       [](InterpreterInput& in) { in.gpr[static_cast<size_t>(Gpr::kRsi)] = 0x1000; }},
      {"unsupported", bytes({0x0f, 0x0b}), 0, nullptr},  // ud2
  };
}

InterpreterInput program_input(const Program& program) {
  InterpreterInput in;
  in.instructions = kMaxInstructions - 1;  // the whole budget
  in.rip_offset = program.code_offset;
  in.image.resize(program.code_offset);
  in.image.insert(in.image.end(), program.code.begin(), program.code.end());
  if (program.setup != nullptr) program.setup(in);
  return in;
}

// A guest as `vmfork run` would start vCPU 0 of it, in the fuzzer's RAM: its segments from 1 MiB
// on (loaded by the ELF loader), boot info at kRamBase, RSP at the top of RAM.
InterpreterInput guest_input(const fs::path& elf_path) {
  Result<std::vector<std::byte>> file = read_file(elf_path);
  if (!file) die(file.error().message);
  const GuestLayout layout = GuestLayout::create(uint64_t{4} << 20, 1).value();
  std::unique_ptr<GuestMemory> memory =
      GuestMemory::create({.pool_bytes = uint64_t{16} << 20, .populate = Populate::kOnDemand})
          .value();
  std::unique_ptr<AddressSpace> space = memory->create_space("seed", layout.ram_bytes()).value();
  Result<LoadedElf> loaded = load_elf(*file, *space, layout);
  if (!loaded) die(elf_path.string() + ": " + loaded.error().message);
  const uint64_t ram_end = kRamBase + kRamBytes;
  const uint64_t stack_bytes = 0x2000;
  if (loaded->free_base.value() > ram_end - stack_bytes) {
    die(elf_path.string() + " does not fit the fuzzer's RAM");
  }

  InterpreterInput in;
  in.instructions = kMaxInstructions - 1;
  in.rip_offset = static_cast<uint16_t>(loaded->entry.value() - kRamBase);
  in.gpr[static_cast<size_t>(Gpr::kRdi)] = 0;  // vCPU 0
  in_ram(in, Gpr::kRsi, 0);                    // the boot info
  in.gpr[static_cast<size_t>(Gpr::kRsp)] = ram_end;
  const BootInfo info{.vcpu_count = 1,
                      .ram_bytes = ram_end,
                      .clone_id = 0,
                      .free_base = loaded->free_base,
                      .free_end = Gpa(ram_end - stack_bytes)};
  const auto encoded = info.encode();
  in.image.assign(encoded.begin(), encoded.end());
  const uint64_t image_bytes = loaded->free_base.value() - layout.image_base().value();
  std::vector<std::byte> program(image_bytes);
  if (!space->read(layout.image_base(), program)) die("reading back " + elf_path.string());
  // Trailing zeros (.bss) need not be in the file: the rest of RAM reads as zero.
  while (!program.empty() && program.back() == std::byte{0})
    program.pop_back();
  in.image.resize(layout.image_base().value() - kRamBase);
  in.image.insert(in.image.end(), program.begin(), program.end());
  return in;
}

}  // namespace
}  // namespace vmfork::fuzz

int main(int argc, char** argv) {
  using namespace vmfork::fuzz;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [GUEST.elf...]\n", argv[0]);
    return 2;
  }
  const fs::path corpus(argv[1]);
  const fs::path elf_dir = corpus / "fuzz_elf_loader";
  const fs::path interpreter_dir = corpus / "fuzz_interpreter";
  fs::create_directories(elf_dir);
  fs::create_directories(interpreter_dir);

  elf_seeds(elf_dir);
  for (const Program& program : programs())
    write_file(interpreter_dir / (std::string("seed-") + program.name),
               program_input(program).encode());
  for (int i = 2; i < argc; ++i) {
    const fs::path guest(argv[i]);
    const vmfork::Result<std::vector<std::byte>> file = vmfork::read_file(guest);
    if (!file) die(file.error().message);
    write_file(elf_dir / ("seed-guest-" + guest.filename().string()), file.value());
    write_file(interpreter_dir / ("seed-guest-" + guest.stem().string()),
               guest_input(guest).encode());
  }
  return 0;
}
