// Locked read-modify-writes, and spinlocks released with a plain store, from several interpreter
// threads on shared guest memory lose no update: aligned (one host atomic) and across a cache
// line or a page (an exclusive section, with the other threads parked as Vm parks its vCPUs),
// on flat memory and on a COW-shared address space right after a fork.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"
#include "tests/guestmm/test_support.h"
#include "tests/soft/flat_environment.h"
#include "vmm/soft/interpreter.h"
#include "vmm/vm/vcpu_pause.h"

namespace vmfork::soft::testing {
namespace {

using vmfork::testing::kMiB;
using vmfork::testing::kSanitizerSlowdown;
using vmfork::testing::unwrap;

constexpr uint64_t kCode = 0x100000;
constexpr uint64_t kData = 0x200000;  // two shared pages
constexpr uint64_t kIterations = 200000;
// Every split operation is an exclusive section: a round trip through every thread.
constexpr uint64_t kSplitIterations = 20000 / kSanitizerSlowdown;

// A test thread standing in for a vCPU of a VM: its own code region, shared data pages (through
// `translate`), and the VM's pause (VcpuPause, the one Vm uses), which it honours as SoftVcpu
// does: it parks at the boundary where check() says so, and runs at least a basic block after it
// resumes.
class ThreadEnvironment : public FlatEnvironment, public PauseMember {
 public:
  ThreadEnvironment(VcpuPause& pause, VcpuMemory* memory) : pause_(pause), memory_(memory) {}

  Exclusive begin_exclusive() override {
    ++exclusive_requests;
    if (!pause_.try_take(*this)) return Exclusive::kRetry;
    pause_.wait_until_others_parked(*this);
    resuming();
    return Exclusive::kGranted;
  }
  void end_exclusive() override { pause_.resume_others(); }
  bool check() override {
    if (memory_ != nullptr) memory_->check();
    if (resumed_) {
      resumed_ = false;
      return false;
    }
    return pause_.must_stop(this);
  }
  uint64_t flush_generation() const override {
    return memory_ != nullptr ? memory_->tlb().flushes() : 0;
  }
  void parking() override {
    if (memory_ != nullptr) memory_->park();
  }
  void resuming() override {
    if (memory_ != nullptr) memory_->resume();
  }

  // Runs to hlt, parking whenever another thread holds the pause.
  void run_to_halt(CpuState& state) {
    Interpreter interpreter;
    resuming();
    for (;;) {
      const RunExit e = interpreter.run(state, *this, ~uint64_t{0});
      if (e.reason == ExitReason::kStopped) {
        if (pause_.must_stop(this)) {
          EXPECT_TRUE(pause_.park_until_resumed(*this));
          resumed_ = true;
        }
        continue;
      }
      EXPECT_EQ(e.reason, ExitReason::kHalted) << e.message;
      break;
    }
    parking();
    pause_.stopped();
  }

 protected:
  VcpuPause& pause_;
  VcpuMemory* memory_;
  bool resumed_ = false;
};

// A VcpuPause with `threads` running members.
std::unique_ptr<VcpuPause> make_pause(int threads) {
  auto pause = std::make_unique<VcpuPause>();
  for (int i = 0; i < threads; ++i)
    pause->add_running();
  return pause;
}

// Two pages in reverse order, as FlatEnvironment stores them: an operand not split at the page
// boundary reads and writes the wrong bytes.
struct SharedPages {
  alignas(4096) std::byte bytes[2 * 4096];
  std::byte* at(uint64_t gpa) { return bytes + ((gpa - kData) < 4096 ? 4096 : 0) + (gpa & 0xfff); }
  uint64_t load(uint64_t gpa) {
    uint64_t value = 0;
    for (unsigned i = 0; i < 8; ++i)
      value |= uint64_t{std::to_integer<uint8_t>(*at(gpa + i))} << (8 * i);
    return value;
  }
};

// Runs `loops[i]` on thread i, each thread with its own interpreter and environment, every
// environment translating the two data pages to the same host bytes; RBX = `rbx`, RCX =
// `iterations`. Returns the shared pages.
std::unique_ptr<SharedPages> run_threads(const std::vector<std::vector<uint8_t>>& loops,
                                         uint64_t rbx, uint64_t iterations) {
  const int threads = static_cast<int>(loops.size());
  auto shared = std::make_unique<SharedPages>();
  std::memset(shared->bytes, 0, sizeof shared->bytes);
  struct VcpuEnvironment : ThreadEnvironment {
    VcpuEnvironment(VcpuPause& pause, SharedPages& pages)
        : ThreadEnvironment(pause, nullptr), pages_(pages) {}
    Result<std::byte*> translate(uint64_t gpa, Access access) override {
      if (gpa - kData < 2 * 4096) return pages_.at(gpa);
      return FlatEnvironment::translate(gpa, access);
    }
    SharedPages& pages_;
  };
  const std::unique_ptr<VcpuPause> pause = make_pause(threads);
  vmfork::testing::SpinBarrier start(threads);
  auto vcpu = [&](const std::vector<uint8_t>& loop) {
    VcpuEnvironment env(*pause, *shared);
    env.add_region(kCode, 1);
    env.store(kCode, loop.data(), loop.size());
    CpuState state;
    state.rip = kCode;
    state.reg(Gpr::kRbx) = rbx;
    state.reg(Gpr::kRcx) = iterations;
    start.arrive_and_wait();  // so the loops overlap
    env.run_to_halt(state);
  };
  std::vector<std::thread> vcpus;
  for (const std::vector<uint8_t>& loop : loops)
    vcpus.emplace_back(vcpu, std::cref(loop));
  for (std::thread& t : vcpus)
    t.join();
  return shared;
}

// The same loop on `threads` threads.
std::unique_ptr<SharedPages> run_on_threads(int threads, const std::vector<uint8_t>& loop,
                                            uint64_t rbx = kData,
                                            uint64_t iterations = kIterations) {
  return run_threads(std::vector<std::vector<uint8_t>>(static_cast<size_t>(threads), loop), rbx,
                     iterations);
}

// loop: mov eax, 1; lock xadd [rbx], rax; dec rcx; jnz loop; hlt
const std::vector<uint8_t> kXaddLoop = {0xb8, 1,    0,    0,    0,    0xf0, 0x48, 0x0f,
                                        0xc1, 0x03, 0x48, 0xff, 0xc9, 0x75, 0xf1, 0xf4};
// loop: mov rax, [rbx]; retry: lea rdx, [rax+1]; lock cmpxchg [rbx], rdx; jnz retry;
//       dec rcx; jnz loop; hlt
const std::vector<uint8_t> kCmpxchgLoop = {0x48, 0x8b, 0x03, 0x48, 0x8d, 0x50, 0x01,
                                           0xf0, 0x48, 0x0f, 0xb1, 0x13, 0x75, 0xf5,
                                           0x48, 0xff, 0xc9, 0x75, 0xed, 0xf4};
// [rbx] is a lock word, [rbx+8] a plain counter incremented under it.
// loop: b8 01 00 00 00; 87 03; 85 c0; 75 f5 (back to mov eax,1);
//          48 ff 43 08 (inc qword [rbx+8]); 31 c0; 87 03 (release); 48 ff c9; 75 e8; f4
const std::vector<uint8_t> kXchgSpinlockLoop = {
    0xb8, 1,    0,    0,    0,    0x87, 0x03, 0x85, 0xc0, 0x75, 0xf5, 0x48, 0xff,
    0x43, 0x08, 0x31, 0xc0, 0x87, 0x03, 0x48, 0xff, 0xc9, 0x75, 0xe8, 0xf4};
// mov eax, 1; loop: lock add [rbx], rax; dec rcx; jnz loop; hlt
const std::vector<uint8_t> kAddLoop = {0xb8, 1,    0,    0,    0,    0xf0, 0x48, 0x01,
                                       0x03, 0x48, 0xff, 0xc9, 0x75, 0xf7, 0xf4};

TEST(SoftAtomicTest, LockXaddFromTwoThreadsLosesNoUpdate) {
  // loop: mov eax, 1; lock xadd [rbx], rax; dec rcx; jnz loop; hlt
  EXPECT_EQ(run_on_threads(2, kXaddLoop)->load(kData), 2 * kIterations);
}

TEST(SoftAtomicTest, LockCmpxchgLoopFromTwoThreadsLosesNoUpdate) {
  // loop: mov rax, [rbx]; retry: lea rdx, [rax+1]; lock cmpxchg [rbx], rdx; jnz retry;
  //       dec rcx; jnz loop; hlt
  EXPECT_EQ(run_on_threads(2, kCmpxchgLoop)->load(kData), 2 * kIterations);
}

TEST(SoftAtomicTest, XchgSpinlockFromTwoThreadsLosesNoUpdate) {
  const std::unique_ptr<SharedPages> pages = run_on_threads(2, kXchgSpinlockLoop);
  EXPECT_EQ(pages->load(kData), 0u);  // released
  EXPECT_EQ(pages->load(kData + 8), 2 * kIterations);
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
  const std::unique_ptr<SharedPages> pages = run_on_threads(kThreads, loop);
  EXPECT_EQ(pages->load(kData), 0u);  // released
  EXPECT_EQ(pages->load(kData + 8), kThreads * kIterations);
}

// Across a page or a cache line: every operation is an exclusive section, and none may let another
// thread's update slip between its read and its write.

TEST(SoftAtomicTest, SplitPageLockAddFromThreeThreadsLosesNoUpdate) {
  const uint64_t at = kData + 4096 - 4;
  EXPECT_EQ(run_on_threads(3, kAddLoop, at, kSplitIterations)->load(at), 3 * kSplitIterations);
}

TEST(SoftAtomicTest, SplitLineLockXaddFromTwoThreadsLosesNoUpdate) {
  const uint64_t at = kData + 64 - 4;
  EXPECT_EQ(run_on_threads(2, kXaddLoop, at, kSplitIterations)->load(at), 2 * kSplitIterations);
}

TEST(SoftAtomicTest, SplitPageLockCmpxchgLoopFromTwoThreadsLosesNoUpdate) {
  const uint64_t at = kData + 4096 - 2;
  EXPECT_EQ(run_on_threads(2, kCmpxchgLoop, at, kSplitIterations)->load(at), 2 * kSplitIterations);
}

TEST(SoftAtomicTest, SplitPageXchgSpinlockFromTwoThreadsLosesNoUpdate) {
  const uint64_t at = kData + 4096 - 2;  // the 4-byte lock word crosses the page
  const std::unique_ptr<SharedPages> pages =
      run_on_threads(2, kXchgSpinlockLoop, at, kSplitIterations);
  EXPECT_EQ(pages->load(at) & 0xffffffff, 0u);  // released
  EXPECT_EQ(pages->load(at + 8), 2 * kSplitIterations);
}

// A locked operation is atomic with respect to plain accesses too: one thread adds 1 to a qword
// across a page (its high half, on the second page, never changes through the add), another
// increments that high half with a plain `inc` until the adds are done, counting its increments.
// A locked add that read the high half and wrote it back later would undo increments made in
// between.
TEST(SoftAtomicTest, SplitPageLockAddLosesNoPlainStoreOfAnotherThread) {
  const uint64_t at = kData + 4096 - 4;
  // mov eax, 1; loop: lock add [rbx], rax; dec rcx; jnz loop; mov qword [rbx+12], 1 (done); hlt
  const std::vector<uint8_t> adder = {0xb8, 1,    0,    0,    0,    0xf0, 0x48, 0x01,
                                      0x03, 0x48, 0xff, 0xc9, 0x75, 0xf7, 0x48, 0xc7,
                                      0x43, 0x0c, 1,    0,    0,    0,    0xf4};
  // loop: inc dword [rbx+4]; inc rdx; cmp qword [rbx+12], 0; je loop; mov [rbx+20], rdx; hlt
  const std::vector<uint8_t> incrementer = {0xff, 0x43, 0x04, 0x48, 0xff, 0xc2, 0x48, 0x83, 0x7b,
                                            0x0c, 0x00, 0x74, 0xf3, 0x48, 0x89, 0x53, 0x14, 0xf4};
  const std::unique_ptr<SharedPages> pages =
      run_threads({adder, incrementer}, at, kSplitIterations);
  const uint64_t value = pages->load(at);
  const uint64_t increments = pages->load(at + 20);
  EXPECT_EQ(value & 0xffffffff, kSplitIterations) << "the locked adds";
  EXPECT_GT(increments, 0u);
  EXPECT_EQ(value >> 32, increments & 0xffffffff) << "the plain increments";
}

// After a fork: the original and its clone share both pages copy-on-write. Two vCPU threads in
// each hammer a locked add across the page boundary, so that the first ones break the COW sharing
// of either page inside their exclusive sections, while the other VM breaks its own. Each VM ends
// with its own exact total, and the snapshot they were forked from keeps its bytes.
TEST(SoftAtomicTest, SplitPageLockAddOnCowSharedPagesAfterAForkIsExactInEachVm) {
  constexpr uint64_t kRam = 16 * kMiB;
  constexpr uint64_t kAt = kData + 4096 - 4;
  constexpr uint64_t kStart = 0x0000'0001'0000'0000;  // different bytes on each page
  constexpr int kVcpusPerVm = 2;
  std::unique_ptr<GuestMemory> memory = vmfork::testing::make_memory();
  std::unique_ptr<AddressSpace> original = unwrap(memory->create_space("vm0", kRam));
  vmfork::testing::write_u64(*original, Gpa(kAt), kStart);
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(original->snapshot("vm0.snapshot"));
  std::unique_ptr<AddressSpace> clone = unwrap(snapshot->spawn("vm0.1"));

  struct Vm {
    AddressSpace* space;
    std::unique_ptr<VcpuPause> pause = make_pause(kVcpusPerVm);
    std::vector<std::unique_ptr<VcpuMemory>> vcpus{};
  };
  std::array<Vm, 2> vms{Vm{original.get()}, Vm{clone.get()}};
  for (Vm& vm : vms) {
    for (int i = 0; i < kVcpusPerVm; ++i)
      vm.vcpus.push_back(unwrap(VcpuMemory::create(*vm.space, VcpuStart::kParked)));
  }
  // Data through the vCPU's memory (its EPT, its faults); code from a flat region.
  struct SpaceEnvironment : ThreadEnvironment {
    using ThreadEnvironment::ThreadEnvironment;
    Result<std::byte*> translate(uint64_t gpa, Access access) override {
      if (gpa >= kData) return memory_->translate(Gpa(gpa), access);
      return FlatEnvironment::translate(gpa, access);
    }
  };
  vmfork::testing::SpinBarrier start(2 * kVcpusPerVm);
  std::vector<std::thread> threads;
  for (Vm& vm : vms) {
    for (std::unique_ptr<VcpuMemory>& vcpu : vm.vcpus) {
      threads.emplace_back([&start, &vm, memory = vcpu.get()] {
        SpaceEnvironment env(*vm.pause, memory);
        env.add_region(kCode, 1);
        env.store(kCode, kAddLoop.data(), kAddLoop.size());
        CpuState state;
        state.rip = kCode;
        state.reg(Gpr::kRbx) = kAt;
        state.reg(Gpr::kRcx) = kSplitIterations;
        start.arrive_and_wait();
        env.run_to_halt(state);
      });
    }
  }
  for (std::thread& t : threads)
    t.join();

  const uint64_t total = kStart + kVcpusPerVm * kSplitIterations;
  EXPECT_EQ(vmfork::testing::read_u64(*original, Gpa(kAt)), total);
  EXPECT_EQ(vmfork::testing::read_u64(*clone, Gpa(kAt)), total);
  std::unique_ptr<AddressSpace> witness = unwrap(snapshot->spawn("vm0.2"));
  EXPECT_EQ(vmfork::testing::read_u64(*witness, Gpa(kAt)), kStart);
  EXPECT_GE(original->counters().copies, 1u);
  EXPECT_GE(clone->counters().copies, 1u);
  for (Vm& vm : vms)
    vm.vcpus.clear();  // leave the spaces before they go
}

}  // namespace
}  // namespace vmfork::soft::testing
