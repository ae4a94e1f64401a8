// Random instruction bytes (deterministic seed): the interpreter must never crash or hang;
// any exit is fine.
#include <gtest/gtest.h>

#include <random>

#include "tests/soft/flat_environment.h"
#include "vmm/soft/interpreter.h"

namespace vmfork::soft::testing {
namespace {

TEST(SoftFuzzTest, RandomByteStreamsAlwaysExit) {
  std::mt19937_64 rng(0xf022);
  constexpr uint64_t kBase = 0x10000;
  constexpr size_t kPages = 16;
  Interpreter interpreter;
  size_t exits[8] = {};
  for (int round = 0; round < 4000; ++round) {
    FlatEnvironment env;
    env.add_region(kBase, kPages);
    std::vector<uint8_t> bytes(kPages * 4096);
    for (auto& b : bytes)
      b = static_cast<uint8_t>(rng());
    env.store(kBase, bytes.data(), bytes.size());
    CpuState state;
    state.rip = kBase + rng() % (kPages * 4096);
    for (auto& r : state.gpr) {
      // Half point into the memory, half anywhere.
      r = rng() % 2 != 0 ? kBase + rng() % (kPages * 4096) : rng();
    }
    state.gpr[1] &= 0xfff;  // keep most rep counts short
    state.rflags = 0x2 | (rng() & 0xcd5);
    env.generation = static_cast<uint64_t>(round);
    const RunExit e = interpreter.run(state, env, 64);
    ++exits[static_cast<size_t>(e.reason)];
  }
  for (size_t i = 0; i < 7; ++i) {
    std::printf("%s: %zu\n", to_string(static_cast<ExitReason>(i)), exits[i]);
  }
}

}  // namespace
}  // namespace vmfork::soft::testing
