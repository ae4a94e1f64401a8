#include "vmm/bench/guest_code.h"

#include <initializer_list>

namespace vmfork::bench {

namespace {

void append(std::vector<std::byte>& code, std::initializer_list<uint8_t> bytes) {
  for (uint8_t byte : bytes)
    code.push_back(std::byte{byte});
}

void append_imm32(std::vector<std::byte>& code, uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8)
    code.push_back(std::byte{static_cast<uint8_t>(value >> shift)});
}

void append_imm64(std::vector<std::byte>& code, uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8)
    code.push_back(std::byte{static_cast<uint8_t>(value >> shift)});
}

// hlt in a loop, as the guest runtime halts: a vCPU stops at the first hlt
// everywhere but on PVM, whose native mode runs past a hlt until the
// monitor finds the vCPU at it (kvm/halt_watch.h); the loop keeps it there.
void append_halt(std::vector<std::byte>& code) {
  append(code, {0xF4});        // halt: hlt
  append(code, {0xEB, 0xFD});  //       jmp halt (-3)
}

}  // namespace

std::vector<std::byte> fork_then_halt_code(uint32_t clones) {
  std::vector<std::byte> code;
  append(code, {0xB8});  // mov eax, clones
  append_imm32(code, clones);
  append(code, {0xBA});  // mov edx, 0x510
  append_imm32(code, 0x510);
  append(code, {0xEF});  // out dx, eax
  append_halt(code);
  return code;
}

std::vector<std::byte> spin_forever_code() {
  std::vector<std::byte> code;
  append(code, {0xF3, 0x90});  // spin: pause
  append(code, {0xEB, 0xFC});  //       jmp spin (-4)
  return code;
}

std::vector<std::byte> snapshot_then_work_code(uint64_t first_page, uint64_t stride,
                                               uint32_t pages) {
  std::vector<std::byte> code;
  append(code, {0xBA});  // mov edx, 0x511
  append_imm32(code, 0x511);
  append(code, {0xEF});              // out dx, eax
  append(code, {0x48, 0x85, 0xC0});  // test rax, rax
  append(code, {0x74, 0x2A});        // jz exit (+42: the 25 bytes of set-up, the 17 of the loop)
  append(code, {0x48, 0xBF});        // mov rdi, first_page
  append_imm64(code, first_page);
  append(code, {0x48, 0xBE});  // mov rsi, stride
  append_imm64(code, stride);
  append(code, {0xB9});  // mov ecx, pages
  append_imm32(code, pages);
  append(code, {0x48, 0x8B, 0x07});  // loop: mov rax, [rdi]
  append(code, {0x48, 0xFF, 0xC0});  //       inc rax
  append(code, {0x48, 0x89, 0x07});  //       mov [rdi], rax
  append(code, {0x48, 0x01, 0xF7});  //       add rdi, rsi
  append(code, {0x48, 0xFF, 0xC9});  //       dec rcx
  append(code, {0x75, 0xEF});        //       jnz loop (-17)
  append(code, {0x31, 0xC0});        // exit: xor eax, eax
  append(code, {0xBA});              //       mov edx, 0xF4
  append_imm32(code, 0xF4);
  append(code, {0xEF});  //       out dx, eax
  append_halt(code);
  return code;
}

std::vector<std::byte> integer_loop_code(uint32_t iterations) {
  std::vector<std::byte> code;
  append(code, {0xB9});  // mov ecx, iterations
  append_imm32(code, iterations);
  append(code, {0x48, 0x01, 0xC8});  // loop: add rax, rcx
  append(code, {0x48, 0x31, 0xC3});  //       xor rbx, rax
  append(code, {0x48, 0xFF, 0xC9});  //       dec rcx
  append(code, {0x75, 0xF5});        //       jnz loop (-11)
  // The VM ends at once on every engine: exit status 0, not a hlt (which
  // PVM reports only milliseconds later, kvm/halt_watch.h).
  append(code, {0x31, 0xC0});  // xor eax, eax
  append(code, {0xBA});        // mov edx, 0xF4
  append_imm32(code, 0xF4);
  append(code, {0xEF});  // out dx, eax
  append_halt(code);
  return code;
}

void run_integer_loop_natively(uint32_t iterations) {
  uint64_t rax = 0;
  uint64_t rbx = 0;
  uint64_t rcx = iterations;
  asm volatile(
      "1:\n\t"
      "add %%rcx, %%rax\n\t"
      "xor %%rax, %%rbx\n\t"
      "dec %%rcx\n\t"
      "jnz 1b"
      : "+a"(rax), "+b"(rbx), "+c"(rcx)
      :
      : "cc");
}

}  // namespace vmfork::bench
