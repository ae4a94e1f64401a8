// Tiny guests the monitor benchmarks boot without a guest file: x86-64
// machine code placed at 1 MiB (vmm/vm/boot_vm.h boot_code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmfork::bench {

// vCPU 0: fork `clones` clones (out 0x510), then hlt, in the original and in
// every clone, whose first instruction is that hlt.
std::vector<std::byte> fork_then_halt_code(uint32_t clones);

// An integer loop of `iterations` x 4 instructions (add, xor, dec, jnz),
// then an exit with status 0 (out to port 0xF4). Executes
// 4 * iterations + 4 instructions.
std::vector<std::byte> integer_loop_code(uint32_t iterations);
inline uint64_t integer_loop_instructions(uint32_t iterations) {
  return uint64_t{4} * iterations + 4;
}

// The same loop run natively on the host, for the same count: its
// instructions per second are the ceiling an engine could reach.
void run_integer_loop_natively(uint32_t iterations);

}  // namespace vmfork::bench
