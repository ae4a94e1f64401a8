// The COW fault path with several vCPU threads at once: faults on different
// pages of one space, on one page from two vCPUs of one space, and on one
// shared frame from two spaces, all started together at a barrier.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 16 * kMiB;
constexpr Gfn kFirst{256};
constexpr uint64_t kPages = 64;

// Guest word accesses as the soft engine performs them (relaxed atomics:
// guest accesses may race with each other).
bool guest_store(VcpuMemory& vcpu, Gpa gpa, uint64_t value) {
  Result<std::byte*> host = vcpu.translate(gpa, Access::kWrite);
  if (!host.ok()) return false;
  __atomic_store_n(reinterpret_cast<uint64_t*>(*host), value, __ATOMIC_RELAXED);
  return true;
}

uint64_t guest_load(VcpuMemory& vcpu, Gpa gpa) {
  Result<std::byte*> host = vcpu.translate(gpa, Access::kRead);
  if (!host.ok()) return ~uint64_t{0};
  return __atomic_load_n(reinterpret_cast<const uint64_t*>(*host), __ATOMIC_RELAXED);
}

// A host write that waits out a transient kOutOfFrames: frames retired while
// vCPUs run come back only once those vCPUs pass a quiescent point, and on a
// 2-core host a vCPU thread may not be running for a while.
Result<void> write_retrying(GuestMemory& memory, AddressSpace& space, Gpa gpa,
                            std::span<const std::byte> data) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    Result<void> written = space.write(gpa, data);
    if (written.ok() || written.error().code != ErrorCode::kOutOfFrames ||
        std::chrono::steady_clock::now() > deadline) {
      return written;
    }
    memory.reclaimer().collect();
    std::this_thread::yield();
  }
}

// A snapshot whose kPages pages hold 1000 + page index in every word.
std::unique_ptr<MemorySnapshot> make_snapshot(GuestMemory& memory) {
  std::unique_ptr<AddressSpace> source = unwrap(memory.create_space("source", kRam));
  std::vector<uint64_t> words(kPageSize / sizeof(uint64_t));
  for (uint64_t i = 0; i < kPages; ++i) {
    std::fill(words.begin(), words.end(), 1000 + i);
    write_bytes(*source, (kFirst + i).gpa(), std::as_bytes(std::span(words)));
  }
  return unwrap(source->snapshot("snap"));
}

TEST(CowConcurrency, TwoVcpusWritingDifferentSharedPagesEachGetTheirOwnCopies) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<MemorySnapshot> snapshot = make_snapshot(*memory);
  const int rounds = 40 / kSanitizerSlowdown + 2;
  for (int round = 0; round < rounds; ++round) {
    std::unique_ptr<AddressSpace> space = unwrap(snapshot->spawn("vm"));
    std::unique_ptr<VcpuMemory> vcpus[2] = {unwrap(VcpuMemory::create(*space)),
                                            unwrap(VcpuMemory::create(*space))};
    SpinBarrier start(2);
    std::atomic<int> failures{0};
    std::atomic<int> done{0};
    auto body = [&](uint64_t me) {
      VcpuMemory& vcpu = *vcpus[me];
      start.arrive_and_wait();
      // Interleaved pages: both threads unshare the same tables at once.
      for (uint64_t i = me; i < kPages; i += 2) {
        if (!guest_store(vcpu, (kFirst + i).gpa(), 5000 + i)) failures.fetch_add(1);
        vcpu.check();
      }
      done.fetch_add(1);
      // Keep acknowledging the other vCPU's shootdowns until it finishes.
      while (done.load() < 2)
        vcpu.check();
    };
    std::thread a(body, 0);
    std::thread b(body, 1);
    a.join();
    b.join();
    ASSERT_EQ(failures.load(), 0);
    for (uint64_t i = 0; i < kPages; ++i) {
      EXPECT_EQ(read_u64(*space, (kFirst + i).gpa()), 5000 + i) << "page " << i;
      EXPECT_EQ(read_u64(*space, (kFirst + i).gpa() + 8), 1000 + i) << "page " << i;
    }
    EXPECT_EQ(space->counters().copies, kPages);
    for (auto& vcpu : vcpus)
      vcpu.reset();
    ASSERT_TRUE(IsOk(memory->verify_references()));
  }
  std::unique_ptr<AddressSpace> fresh = unwrap(snapshot->spawn("fresh"));
  for (uint64_t i = 0; i < kPages; ++i)
    EXPECT_EQ(read_u64(*fresh, (kFirst + i).gpa()), 1000 + i);
}

TEST(CowConcurrency, TwoVcpusWritingTheSameSharedPageCopyItOnce) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<MemorySnapshot> snapshot = make_snapshot(*memory);
  const int rounds = 200 / kSanitizerSlowdown;
  const Gpa target = kFirst.gpa();
  for (int round = 0; round < rounds; ++round) {
    std::unique_ptr<AddressSpace> space = unwrap(snapshot->spawn("vm"));
    std::unique_ptr<VcpuMemory> vcpus[2] = {unwrap(VcpuMemory::create(*space)),
                                            unwrap(VcpuMemory::create(*space))};
    SpinBarrier start(2);
    std::atomic<int> done{0};
    std::atomic<int> failures{0};
    auto body = [&](uint64_t me) {
      VcpuMemory& vcpu = *vcpus[me];
      start.arrive_and_wait();
      if (!guest_store(vcpu, target + 8 * (me + 1), 7000 + me)) failures.fetch_add(1);
      done.fetch_add(1);
      while (done.load() < 2)
        vcpu.check();
    };
    std::thread a(body, 0);
    std::thread b(body, 1);
    a.join();
    b.join();
    ASSERT_EQ(failures.load(), 0);
    // Both stores landed in the one private copy.
    EXPECT_EQ(read_u64(*space, target + 8), 7000u);
    EXPECT_EQ(read_u64(*space, target + 16), 7001u);
    EXPECT_EQ(read_u64(*space, target), 1000u);
    EXPECT_EQ(space->counters().copies, 1u);
    for (auto& vcpu : vcpus)
      vcpu.reset();
    ASSERT_TRUE(IsOk(memory->verify_references()));
    EXPECT_EQ(memory->frame_counts().data, kPages + 1);
  }
}

TEST(CowConcurrency, TwoSpacesWritingOneSharedFrameBothCopyAndTheSnapshotKeepsIt) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<MemorySnapshot> snapshot = make_snapshot(*memory);
  const int rounds = 200 / kSanitizerSlowdown;
  const Gpa target = kFirst.gpa();
  for (int round = 0; round < rounds; ++round) {
    std::unique_ptr<AddressSpace> spaces[2] = {unwrap(snapshot->spawn("v")),
                                               unwrap(snapshot->spawn("w"))};
    std::unique_ptr<VcpuMemory> vcpus[2] = {unwrap(VcpuMemory::create(*spaces[0])),
                                            unwrap(VcpuMemory::create(*spaces[1]))};
    SpinBarrier start(2);
    std::atomic<int> failures{0};
    std::atomic<int> wrong{0};
    auto body = [&](uint64_t me) {
      VcpuMemory& vcpu = *vcpus[me];
      start.arrive_and_wait();
      for (uint64_t word = 0; word < kPageSize / 8; word += 64) {
        if (!guest_store(vcpu, target + 8 * word, 9000 + me)) failures.fetch_add(1);
      }
      // Every word this space did not write still holds the snapshot's value.
      for (uint64_t word = 1; word < kPageSize / 8; word += 64) {
        if (guest_load(vcpu, target + 8 * word) != 1000) wrong.fetch_add(1);
      }
      vcpu.check();
    };
    std::thread a(body, 0);
    std::thread b(body, 1);
    a.join();
    b.join();
    ASSERT_EQ(failures.load(), 0);
    EXPECT_EQ(wrong.load(), 0);
    for (uint64_t me = 0; me < 2; ++me) {
      EXPECT_EQ(read_u64(*spaces[me], target), 9000 + me);
      EXPECT_EQ(spaces[me]->counters().copies, 1u);
    }
    for (auto& vcpu : vcpus)
      vcpu.reset();
    ASSERT_TRUE(IsOk(memory->verify_references()));
  }
  std::unique_ptr<AddressSpace> fresh = unwrap(snapshot->spawn("fresh"));
  EXPECT_EQ(read_u64(*fresh, target), 1000u);
}

TEST(CowConcurrency, ReclamationWithRunningVcpusNeverFreesAFrameInUse) {
  // vCPUs of long-lived spaces keep passing quiescent points while a host
  // thread creates, writes and destroys other spaces, so frames are retired
  // and recycled under them. Their own pages must never change.
  std::unique_ptr<GuestMemory> memory = make_memory(16 * kMiB);  // recycling is forced
  std::unique_ptr<MemorySnapshot> snapshot = make_snapshot(*memory);
  std::unique_ptr<AddressSpace> spaces[2] = {unwrap(snapshot->spawn("v")),
                                             unwrap(snapshot->spawn("w"))};
  std::unique_ptr<VcpuMemory> vcpus[2] = {unwrap(VcpuMemory::create(*spaces[0])),
                                          unwrap(VcpuMemory::create(*spaces[1]))};
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  auto body = [&](uint64_t me) {
    VcpuMemory& vcpu = *vcpus[me];
    for (uint64_t i = 0; i < kPages; ++i) {
      if (!guest_store(vcpu, (kFirst + i).gpa() + 8, 20000 * (me + 1) + i)) wrong.fetch_add(1);
    }
    while (!stop.load(std::memory_order_acquire)) {
      for (uint64_t i = 0; i < kPages; ++i) {
        if (guest_load(vcpu, (kFirst + i).gpa()) != 1000 + i) wrong.fetch_add(1);
        if (guest_load(vcpu, (kFirst + i).gpa() + 8) != 20000 * (me + 1) + i) wrong.fetch_add(1);
      }
      vcpu.check();
    }
  };
  std::thread a(body, 0);
  std::thread b(body, 1);
  const int rounds = 200 / kSanitizerSlowdown;
  for (int round = 0; round < rounds; ++round) {
    std::unique_ptr<AddressSpace> churn = unwrap(snapshot->spawn("churn"));
    for (uint64_t i = 0; i < kPages; ++i) {
      ASSERT_TRUE(IsOk(write_retrying(*memory, *churn, (kFirst + i).gpa(), pattern(8, i))));
    }
    ASSERT_TRUE(IsOk(write_retrying(*memory, *churn, Gpa(4 * kMiB),
                                    pattern(64 * kPageSize, static_cast<uint64_t>(round)))));
    churn.reset();
    memory->reclaimer().collect();
  }
  stop.store(true, std::memory_order_release);
  a.join();
  b.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace vmfork::testing
