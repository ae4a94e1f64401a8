// Locked read-modify-writes, and spinlocks released with a plain store, from several interpreter
// threads on shared guest memory lose no update.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>

#include "tests/soft/flat_environment.h"
#include "vmm/soft/interpreter.h"

namespace vmfork::soft::testing {
namespace {

constexpr uint64_t kCode = 0x100000;
constexpr uint64_t kData = 0x200000;
constexpr uint64_t kIterations = 200000;

// Runs `loop` on `threads` threads, each with its own interpreter and environment, every
// environment translating the data page to the same host bytes. Returns the data page's first two
// words.
std::array<uint64_t, 2> run_on_threads(int threads, const std::vector<uint8_t>& loop) {
  alignas(4096) static std::byte shared_page[4096];
  std::memset(shared_page, 0, sizeof shared_page);
  struct VcpuEnvironment : FlatEnvironment {
    Result<std::byte*> translate(uint64_t gpa, Access access) override {
      if ((gpa >> 12) == (kData >> 12)) return shared_page + (gpa & 0xfff);
      return FlatEnvironment::translate(gpa, access);
    }
  };
  std::atomic<int> ready{0};
  auto vcpu = [&] {
    VcpuEnvironment env;
    env.add_region(kCode, 1);
    env.store(kCode, loop.data(), loop.size());
    Interpreter interpreter;
    CpuState state;
    state.rip = kCode;
    state.reg(Gpr::kRbx) = kData;
    state.reg(Gpr::kRcx) = kIterations;
    // Start together so the loops overlap.
    ready.fetch_add(1);
    while (ready.load() < threads) {
    }
    const RunExit e = interpreter.run(state, env, ~uint64_t{0});
    EXPECT_EQ(e.reason, ExitReason::kHalted) << e.message;
  };
  std::vector<std::thread> vcpus;
  for (int i = 0; i < threads; ++i)
    vcpus.emplace_back(vcpu);
  for (std::thread& t : vcpus)
    t.join();
  std::array<uint64_t, 2> words{};
  std::memcpy(words.data(), shared_page, sizeof words);
  return words;
}

TEST(SoftAtomicTest, LockXaddFromTwoThreadsLosesNoUpdate) {
  // loop: mov eax, 1; lock xadd [rbx], rax; dec rcx; jnz loop; hlt
  const std::vector<uint8_t> loop = {0xb8, 1,    0,    0,    0,    0xf0, 0x48, 0x0f,
                                     0xc1, 0x03, 0x48, 0xff, 0xc9, 0x75, 0xf1, 0xf4};
  EXPECT_EQ(run_on_threads(2, loop)[0], 2 * kIterations);
}

TEST(SoftAtomicTest, LockCmpxchgLoopFromTwoThreadsLosesNoUpdate) {
  // loop: mov rax, [rbx]; retry: lea rdx, [rax+1]; lock cmpxchg [rbx], rdx; jnz retry;
  //       dec rcx; jnz loop; hlt
  const std::vector<uint8_t> loop = {0x48, 0x8b, 0x03, 0x48, 0x8d, 0x50, 0x01, 0xf0, 0x48, 0x0f,
                                     0xb1, 0x13, 0x75, 0xf5, 0x48, 0xff, 0xc9, 0x75, 0xed, 0xf4};
  EXPECT_EQ(run_on_threads(2, loop)[0], 2 * kIterations);
}

TEST(SoftAtomicTest, XchgSpinlockFromTwoThreadsLosesNoUpdate) {
  // [rbx] is a lock word, [rbx+8] a plain counter incremented under it.
  // loop: b8 01 00 00 00; 87 03; 85 c0; 75 f7 (back to mov eax,1);
  //          48 ff 43 08 (inc qword [rbx+8]); 31 c0; 87 03 (release); 48 ff c9; 75 e9; f4
  const std::vector<uint8_t> loop = {0xb8, 1,    0,    0,    0,    0x87, 0x03, 0x85, 0xc0,
                                     0x75, 0xf5, 0x48, 0xff, 0x43, 0x08, 0x31, 0xc0, 0x87,
                                     0x03, 0x48, 0xff, 0xc9, 0x75, 0xe8, 0xf4};
  const std::array<uint64_t, 2> words = run_on_threads(2, loop);
  EXPECT_EQ(words[0], 0u);  // released
  EXPECT_EQ(words[1], 2 * kIterations);
}

// The way x86 spinlocks release: a plain store. A guest store must be one host store: glibc's
// memcpy writes 4 bytes as two overlapping stores, and a second store that lands after another
// vCPU's xchg took the lock releases it under that vCPU. More threads than the host has cores, so
// that a thread is often preempted between two host stores.
TEST(SoftAtomicTest, SpinlockReleasedByAPlainStoreLosesNoUpdate) {
  // loop: mov eax, 1; xchg [rbx], eax; test eax, eax; jnz loop;
  //       inc qword [rbx+8]; mov dword [rbx], 0; dec rcx; jnz loop; hlt
  const std::vector<uint8_t> loop = {0xb8, 1,    0,    0,    0,    0x87, 0x03, 0x85, 0xc0,
                                     0x75, 0xf5, 0x48, 0xff, 0x43, 0x08, 0xc7, 0x03, 0,
                                     0,    0,    0,    0x48, 0xff, 0xc9, 0x75, 0xe6, 0xf4};
  constexpr int kThreads = 8;
  const std::array<uint64_t, 2> words = run_on_threads(kThreads, loop);
  EXPECT_EQ(words[0], 0u);  // released
  EXPECT_EQ(words[1], kThreads * kIterations);
}

}  // namespace
}  // namespace vmfork::soft::testing
