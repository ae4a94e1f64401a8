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
constexpr uint64_t kData = 0x200000;             // two shared pages
constexpr uint64_t kDone = kData + 4096 + 2048;  // see with_share_loop()
constexpr uint64_t kIterations = 200000;
// Every split operation is an exclusive section: a round trip through every thread.
constexpr uint64_t kSplitIterations = 10000 / kSanitizerSlowdown;

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

  // Runs to hlt, parking whenever another thread holds the pause. Each exclusive section yields
  // between its read and its write: without the section, another thread would run there.
  void run_to_halt(CpuState& state) {
    Interpreter interpreter;
    interpreter.set_exclusive_window_delay([] { std::this_thread::yield(); });
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

// Makes a thread's loop of `body` (which may use RAX, RCX, RDX and the memory at RBX): it runs
// the body until every thread has run it at least R8 times, counting its runs in R9. Each thread
// increments the word at RSI once it has done its share, and goes on while that word is below the
// number of threads (R8). So the threads contend for as long as the slowest needs: on a busy host
// threads do not start together, and fixed shares might never overlap.
//   loop: <body>; inc r9; dec r10; jnz check; lock inc qword [rsi];
//   check: cmp [rsi], r8; jb loop; hlt
std::vector<uint8_t> with_share_loop(std::vector<uint8_t> body) {
  const std::vector<uint8_t> count = {0x49, 0xff, 0xc1, 0x49, 0xff, 0xca, 0x75, 0x04, 0xf0,
                                      0x48, 0xff, 0x06, 0x4c, 0x39, 0x06, 0x0f, 0x82};
  std::vector<uint8_t> loop = std::move(body);
  loop.insert(loop.end(), count.begin(), count.end());
  const auto back = static_cast<int32_t>(-(static_cast<int64_t>(loop.size()) + 4));
  for (int i = 0; i < 4; ++i)
    loop.push_back(static_cast<uint8_t>(static_cast<uint32_t>(back) >> (8 * i)));
  loop.push_back(0xf4);
  return loop;
}

// The initial registers of a thread running a with_share_loop() loop.
void set_share_registers(CpuState& state, uint64_t rbx, uint64_t threads, uint64_t share) {
  state.rip = kCode;
  state.reg(Gpr::kRbx) = rbx;
  state.reg(Gpr::kRsi) = kDone;
  state.gpr[8] = threads;
  state.gpr[9] = 0;
  state.gpr[10] = share;
}

struct ThreadsResult {
  std::unique_ptr<SharedPages> pages;
  std::vector<uint64_t> runs;  // per thread: how many times it ran its body
  uint64_t total_runs() const {
    uint64_t total = 0;
    for (uint64_t r : runs)
      total += r;
    return total;
  }
};

// Runs with_share_loop(bodies[i]) on thread i, each thread with its own interpreter and
// environment, every environment translating the two data pages to the same host bytes.
ThreadsResult run_threads(const std::vector<std::vector<uint8_t>>& bodies, uint64_t rbx,
                          uint64_t share) {
  const int threads = static_cast<int>(bodies.size());
  ThreadsResult result{std::make_unique<SharedPages>(), std::vector<uint64_t>(bodies.size())};
  std::memset(result.pages->bytes, 0, sizeof result.pages->bytes);
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
  auto vcpu = [&](size_t i) {
    VcpuEnvironment env(*pause, *result.pages);
    const std::vector<uint8_t> loop = with_share_loop(bodies[i]);
    env.add_region(kCode, 1);
    env.store(kCode, loop.data(), loop.size());
    CpuState state;
    set_share_registers(state, rbx, static_cast<uint64_t>(threads), share);
    start.arrive_and_wait();
    env.run_to_halt(state);
    result.runs[i] = state.gpr[9];
  };
  std::vector<std::thread> vcpus;
  for (size_t i = 0; i < bodies.size(); ++i)
    vcpus.emplace_back(vcpu, i);
  for (std::thread& t : vcpus)
    t.join();
  return result;
}

// The same body on `threads` threads.
ThreadsResult run_on_threads(int threads, const std::vector<uint8_t>& body, uint64_t rbx = kData,
                             uint64_t share = kIterations) {
  return run_threads(std::vector<std::vector<uint8_t>>(static_cast<size_t>(threads), body), rbx,
                     share);
}

// mov eax, 1; lock add [rbx], rax
const std::vector<uint8_t> kLockAdd = {0xb8, 1, 0, 0, 0, 0xf0, 0x48, 0x01, 0x03};
// mov eax, 1; lock xadd [rbx], rax
const std::vector<uint8_t> kLockXadd = {0xb8, 1, 0, 0, 0, 0xf0, 0x48, 0x0f, 0xc1, 0x03};
// mov rax, [rbx]; retry: lea rdx, [rax+1]; lock cmpxchg [rbx], rdx; jnz retry
const std::vector<uint8_t> kCmpxchgIncrement = {0x48, 0x8b, 0x03, 0x48, 0x8d, 0x50, 0x01,
                                                0xf0, 0x48, 0x0f, 0xb1, 0x13, 0x75, 0xf5};
// [rbx] is a lock word, [rbx+8] a plain counter incremented under it.
// take: mov eax, 1; xchg [rbx], eax; test eax, eax; jnz take; inc qword [rbx+8];
//       xor eax, eax; xchg [rbx], eax
const std::vector<uint8_t> kXchgSpinlockIncrement = {0xb8, 1,    0,    0,    0,    0x87, 0x03,
                                                     0x85, 0xc0, 0x75, 0xf5, 0x48, 0xff, 0x43,
                                                     0x08, 0x31, 0xc0, 0x87, 0x03};

TEST(SoftAtomicTest, LockXaddFromTwoThreadsLosesNoUpdate) {
  const ThreadsResult r = run_on_threads(2, kLockXadd);
  EXPECT_EQ(r.pages->load(kData), r.total_runs());
}

TEST(SoftAtomicTest, LockCmpxchgLoopFromTwoThreadsLosesNoUpdate) {
  const ThreadsResult r = run_on_threads(2, kCmpxchgIncrement);
  EXPECT_EQ(r.pages->load(kData), r.total_runs());
}

TEST(SoftAtomicTest, XchgSpinlockFromTwoThreadsLosesNoUpdate) {
  const ThreadsResult r = run_on_threads(2, kXchgSpinlockIncrement);
  EXPECT_EQ(r.pages->load(kData), 0u);  // released
  EXPECT_EQ(r.pages->load(kData + 8), r.total_runs());
}

// The way x86 spinlocks release: a plain store. A guest store must be one host store: glibc's
// memcpy writes 4 bytes as two overlapping stores, and a second store that lands after another
// vCPU's xchg took the lock releases it under that vCPU. More threads than the host has cores, so
// that a thread is often preempted between two host stores.
TEST(SoftAtomicTest, SpinlockReleasedByAPlainStoreLosesNoUpdate) {
  // take: mov eax, 1; xchg [rbx], eax; test eax, eax; jnz take; inc qword [rbx+8];
  //       mov dword [rbx], 0
  const std::vector<uint8_t> body = {0xb8, 1,    0,    0,    0,    0x87, 0x03,
                                     0x85, 0xc0, 0x75, 0xf5, 0x48, 0xff, 0x43,
                                     0x08, 0xc7, 0x03, 0,    0,    0,    0};
  constexpr int kThreads = 8;
  const ThreadsResult r = run_on_threads(kThreads, body);
  EXPECT_EQ(r.pages->load(kData), 0u);  // released
  EXPECT_EQ(r.pages->load(kData + 8), r.total_runs());
}

// Across a page or a cache line: every operation is an exclusive section, and none may let another
// thread's update slip between its read and its write.

TEST(SoftAtomicTest, SplitPageLockAddFromThreeThreadsLosesNoUpdate) {
  const uint64_t at = kData + 4096 - 4;
  const ThreadsResult r = run_on_threads(3, kLockAdd, at, kSplitIterations);
  EXPECT_EQ(r.pages->load(at), r.total_runs());
}

TEST(SoftAtomicTest, SplitLineLockXaddFromTwoThreadsLosesNoUpdate) {
  const uint64_t at = kData + 64 - 4;
  const ThreadsResult r = run_on_threads(2, kLockXadd, at, kSplitIterations);
  EXPECT_EQ(r.pages->load(at), r.total_runs());
}

TEST(SoftAtomicTest, SplitPageLockCmpxchgLoopFromTwoThreadsLosesNoUpdate) {
  const uint64_t at = kData + 4096 - 2;
  const ThreadsResult r = run_on_threads(2, kCmpxchgIncrement, at, kSplitIterations);
  EXPECT_EQ(r.pages->load(at), r.total_runs());
}

TEST(SoftAtomicTest, SplitPageXchgSpinlockFromTwoThreadsLosesNoUpdate) {
  const uint64_t at = kData + 4096 - 2;  // the 4-byte lock word crosses the page
  const ThreadsResult r = run_on_threads(2, kXchgSpinlockIncrement, at, kSplitIterations);
  EXPECT_EQ(r.pages->load(at) & 0xffffffff, 0u);  // released
  EXPECT_EQ(r.pages->load(at + 8), r.total_runs());
}

// A locked operation is atomic with respect to plain accesses too: one thread adds 1 to a qword
// across a page (its high half, on the second page, never changes through the add), another
// increments that high half with a plain `inc`. A locked add that read the high half and wrote it
// back later would undo increments made in between.
TEST(SoftAtomicTest, SplitPageLockAddLosesNoPlainStoreOfAnotherThread) {
  const uint64_t at = kData + 4096 - 4;
  const std::vector<uint8_t> plain_increment = {0xff, 0x43, 0x04};  // inc dword [rbx+4]
  const ThreadsResult r = run_threads({kLockAdd, plain_increment}, at, kSplitIterations);
  const uint64_t value = r.pages->load(at);
  EXPECT_EQ(value & 0xffffffff, r.runs[0]) << "the locked adds";
  EXPECT_EQ(value >> 32, r.runs[1] & 0xffffffff) << "the plain increments";
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
    std::array<uint64_t, kVcpusPerVm> runs{};
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
  const std::vector<uint8_t> loop = with_share_loop(kLockAdd);
  vmfork::testing::SpinBarrier start(2 * kVcpusPerVm);
  std::vector<std::thread> threads;
  for (Vm& vm : vms) {
    for (size_t i = 0; i < vm.vcpus.size(); ++i) {
      threads.emplace_back([&start, &vm, &loop, i] {
        SpaceEnvironment env(*vm.pause, vm.vcpus[i].get());
        env.add_region(kCode, 1);
        env.store(kCode, loop.data(), loop.size());
        CpuState state;
        set_share_registers(state, kAt, kVcpusPerVm, kSplitIterations);
        start.arrive_and_wait();
        env.run_to_halt(state);
        vm.runs[i] = state.gpr[9];
      });
    }
  }
  for (std::thread& t : threads)
    t.join();

  for (Vm& vm : vms) {
    uint64_t total = kStart;
    for (uint64_t r : vm.runs)
      total += r;
    EXPECT_EQ(vmfork::testing::read_u64(*vm.space, Gpa(kAt)), total) << vm.space->name();
    EXPECT_GE(vm.space->counters().copies, 1u) << vm.space->name();
  }
  std::unique_ptr<AddressSpace> witness = unwrap(snapshot->spawn("vm0.2"));
  EXPECT_EQ(vmfork::testing::read_u64(*witness, Gpa(kAt)), kStart);
  for (Vm& vm : vms)
    vm.vcpus.clear();  // leave the spaces before they go
}

}  // namespace
}  // namespace vmfork::soft::testing
