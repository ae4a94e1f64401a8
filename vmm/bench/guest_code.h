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

// pause in a loop, forever, writing nothing: a VM that stays idle until the
// monitor pauses or stops it.
std::vector<std::byte> spin_forever_code();

// An integer loop of `iterations` x 4 instructions (add, xor, dec, jnz),
// then an exit with status 0 (out to port 0xF4). Executes
// 4 * iterations + 4 instructions.
std::vector<std::byte> integer_loop_code(uint32_t iterations);
inline uint64_t integer_loop_instructions(uint32_t iterations) {
  return uint64_t{4} * iterations + 4;
}

// Asks for a snapshot (out 0x511). In the VM that asked (RAX = 0 after
// the snapshot), exits with status 0 at once; in a clone restored from the
// snapshot (RAX = k >= 1), first reads, increments and writes back the
// qword at `first_page + i * stride` for i in [0, pages), then exits with
// status 0 (out to port 0xF4). `pages` >= 1; the code fits one page.
std::vector<std::byte> snapshot_then_work_code(uint64_t first_page, uint64_t stride,
                                               uint32_t pages);

// The same loop run natively on the host, for the same count: its
// instructions per second are the ceiling an engine could reach.
void run_integer_loop_natively(uint32_t iterations);

}  // namespace vmfork::bench
