// INVEPT shootdown across real threads (DESIGN section 6): every vCPU is a
// thread that owns its translation cache; initiators wait for their
// acknowledgements, and a waiting vCPU keeps servicing its own shootdowns.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "base/types.h"
#include "base/waiter.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/leaf_lock.h"
#include "ept/shootdown.h"
#include "ept/tlb.h"
#include "tests/ept/concurrency_scale.h"
#include "tests/ept/printers.h"

namespace vmfork {
namespace {

using ept_test::scaled;
using namespace std::chrono_literals;

const Eptp kEptp = Eptp::for_root(FrameId(0x10));
const Eptp kOtherEptp = Eptp::for_root(FrameId(0x11));
constexpr Gfn kGfn(0x40);
constexpr FrameId kFrame(0x500);

// One vCPU's translation cache and shootdown target. The cache is touched
// only by the thread that plays the vCPU.
struct Vcpu {
  std::unique_ptr<TranslationCache> tlb = std::make_unique<TranslationCache>();
  ShootdownTarget target{*tlb};

  void cache(Eptp eptp, Gfn gfn = kGfn) { tlb->insert(eptp, gfn, kFrame, Access::kAll); }
  bool cached(Eptp eptp, Gfn gfn = kGfn) const { return tlb->lookup(eptp, gfn) != nullptr; }
};

void yield_until(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
}

// A barrier whose waiters spin through their Waiter: a vCPU at the barrier
// still services the shootdowns addressed to it (DESIGN section 6).
class SpinBarrier {
 public:
  explicit SpinBarrier(uint32_t parties) : parties_(parties) {}

  void arrive_and_wait(Waiter& waiter) {
    const uint64_t phase = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == parties_) {
      arrived_.store(0, std::memory_order_relaxed);
      phase_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    while (phase_.load(std::memory_order_acquire) == phase) {
      waiter.on_wait();
    }
  }

 private:
  const uint32_t parties_;
  std::atomic<uint32_t> arrived_{0};
  std::atomic<uint64_t> phase_{0};
};

// Runs `body(i)` on `count` threads and joins them. A deadlock fails the
// test (by aborting, with a message) instead of hanging it until the ctest
// timeout.
void run_vcpu_threads(int count, const std::function<void(int)>& body) {
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      body(i);
      finished.fetch_add(1, std::memory_order_release);
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (finished.load(std::memory_order_acquire) < count) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "deadlock: %d of %d vCPU threads still waiting after 60 s\n",
                   count - finished.load(), count);
      std::abort();
    }
    std::this_thread::sleep_for(1ms);
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
}

TEST(ShootdownConcurrencyTest, RunningTargetThatServicesIsFlushedAndAcknowledges) {
  Vcpu vcpu;
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&vcpu.target));
  std::atomic<bool> cached{false};
  std::thread vcpu_thread([&] {
    vcpu.cache(kEptp);
    vcpu.cache(kOtherEptp, kGfn + 1);
    cached.store(true, std::memory_order_release);
    while (!vcpu.target.pending()) {
      std::this_thread::yield();
    }
    EXPECT_TRUE(vcpu.target.service());
    EXPECT_FALSE(vcpu.cached(kEptp));
    EXPECT_TRUE(vcpu.cached(kOtherEptp, kGfn + 1)) << "single-context leaves other EPTPs";
  });
  yield_until(cached);
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  batch.wait(HostWaiter::instance());
  vcpu_thread.join();
  EXPECT_EQ(vcpu.target.serviced(), 1u);
  EXPECT_FALSE(vcpu.target.pending());
}

TEST(ShootdownConcurrencyTest, InitiatorWaitsUntilADelayedTargetAcknowledges) {
  Vcpu vcpu;
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&vcpu.target));
  std::atomic<bool> servicing{false};
  std::thread vcpu_thread([&] {
    vcpu.cache(kEptp);
    while (!vcpu.target.pending()) {
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(20ms);  // a vCPU busy in a long basic block
    servicing.store(true, std::memory_order_release);
    vcpu.target.service();
    EXPECT_FALSE(vcpu.cached(kEptp));
  });
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  batch.wait(HostWaiter::instance());
  EXPECT_TRUE(servicing.load(std::memory_order_acquire))
      << "wait() returned before the running target acknowledged";
  vcpu_thread.join();
}

TEST(ShootdownConcurrencyTest, ParkedTargetIsAcknowledgedOnItsBehalf) {
  Vcpu vcpu;
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&vcpu.target));
  std::atomic<bool> parked{false};
  std::atomic<bool> may_resume{false};
  std::thread vcpu_thread([&] {
    vcpu.cache(kEptp);
    vcpu.target.park();  // halted: it services nothing until it resumes
    parked.store(true, std::memory_order_release);
    yield_until(may_resume);
    vcpu.target.resume();
  });
  yield_until(parked);
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  batch.wait(HostWaiter::instance());  // returns although the vCPU never services
  EXPECT_TRUE(vcpu.target.pending()) << "nobody flushed for the parked vCPU yet";
  may_resume.store(true, std::memory_order_release);
  vcpu_thread.join();
}

TEST(ShootdownConcurrencyTest, ResumeFlushesWhatWasRequestedWhileParked) {
  Vcpu vcpu;
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&vcpu.target));
  std::atomic<bool> parked{false};
  std::atomic<bool> may_resume{false};
  std::thread vcpu_thread([&] {
    vcpu.cache(kEptp);
    vcpu.target.park();
    parked.store(true, std::memory_order_release);
    yield_until(may_resume);
    EXPECT_TRUE(vcpu.cached(kEptp));
    vcpu.target.resume();
    EXPECT_FALSE(vcpu.cached(kEptp)) << "resumed with a stale translation";
    EXPECT_FALSE(vcpu.target.pending());
  });
  yield_until(parked);
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  batch.wait(HostWaiter::instance());
  may_resume.store(true, std::memory_order_release);
  vcpu_thread.join();
  EXPECT_EQ(vcpu.target.serviced(), 1u);
}

TEST(ShootdownConcurrencyTest, AllContextFlushesEveryContext) {
  Vcpu vcpu;
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&vcpu.target));
  std::atomic<bool> cached{false};
  std::thread vcpu_thread([&] {
    for (uint64_t i = 0; i < TranslationCache::kContexts; ++i) {
      vcpu.cache(Eptp::for_root(FrameId(0x20 + i)), Gfn(i));
    }
    cached.store(true, std::memory_order_release);
    while (!vcpu.target.pending()) {
      std::this_thread::yield();
    }
    vcpu.target.service();
    for (uint64_t i = 0; i < TranslationCache::kContexts; ++i) {
      EXPECT_FALSE(vcpu.cached(Eptp::for_root(FrameId(0x20 + i)), Gfn(i))) << "context " << i;
    }
  });
  yield_until(cached);
  ShootdownBatch batch = ShootdownBatch::all_context(domain);
  batch.wait(HostWaiter::instance());
  vcpu_thread.join();
}

TEST(ShootdownConcurrencyTest, EveryTargetOfTheDomainIsFlushed) {
  constexpr int kVcpus = 3;
  std::array<Vcpu, kVcpus> vcpus;
  ShootdownDomain domain;
  for (Vcpu& vcpu : vcpus) {
    EXPECT_TRUE(domain.add(&vcpu.target));
  }
  SpinBarrier barrier(kVcpus + 1);
  HostWaiter initiator;
  std::atomic<int> stale{0};
  std::thread initiator_thread([&] {
    barrier.arrive_and_wait(initiator);  // every vCPU has cached its translation
    ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
    batch.wait(initiator);
    barrier.arrive_and_wait(initiator);
  });
  run_vcpu_threads(kVcpus, [&](int i) {
    Vcpu& self = vcpus[static_cast<size_t>(i)];
    TargetWaiter waiter(self.target);
    self.cache(kEptp);
    barrier.arrive_and_wait(waiter);
    barrier.arrive_and_wait(waiter);  // the initiator arrives only after its wait
    if (self.cached(kEptp)) {
      stale.fetch_add(1);
    }
  });
  initiator_thread.join();
  EXPECT_EQ(stale.load(), 0);
}

TEST(ShootdownConcurrencyTest, TwoVcpusShootingEachOtherDownBothFinish) {
  // "No deadlock by waiting": each waits for the other's acknowledgement
  // while the other waits for its own; both must keep servicing.
  const int kRounds = scaled(2000);
  std::array<Vcpu, 2> vcpus;
  ShootdownDomain domain;
  for (Vcpu& vcpu : vcpus) {
    EXPECT_TRUE(domain.add(&vcpu.target));
  }
  SpinBarrier barrier(2);
  std::array<int, 2> rounds_done{};
  std::array<int, 2> stale{};
  run_vcpu_threads(2, [&](int i) {
    const size_t self_index = static_cast<size_t>(i);
    Vcpu& self = vcpus[self_index];
    TargetWaiter waiter(self.target);
    for (int round = 0; round < kRounds; ++round) {
      const Gfn gfn(static_cast<uint64_t>(round));
      self.cache(kEptp, gfn);
      barrier.arrive_and_wait(waiter);  // both initiate at once
      ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
      batch.wait(waiter);
      if (self.cached(kEptp, gfn)) {
        ++stale[self_index];
      }
      ++rounds_done[self_index];
    }
    barrier.arrive_and_wait(waiter);  // keep servicing until the other is done too
  });
  EXPECT_EQ(rounds_done[0], kRounds);
  EXPECT_EQ(rounds_done[1], kRounds);
  EXPECT_EQ(stale[0] + stale[1], 0);
  EXPECT_FALSE(vcpus[0].target.pending());
  EXPECT_FALSE(vcpus[1].target.pending());
}

TEST(ShootdownConcurrencyTest, AVcpuWaitingForALeafLockKeepsServicingShootdowns) {
  // vCPU 0 holds a leaf lock across its shootdown (step 6 of the COW
  // protocol); vCPU 1 is waiting for that leaf lock, and must acknowledge
  // while it waits, or vCPU 0 never releases the lock.
  const int kRounds = scaled(300);
  std::array<Vcpu, 2> vcpus;
  ShootdownDomain domain;
  for (Vcpu& vcpu : vcpus) {
    EXPECT_TRUE(domain.add(&vcpu.target));
  }
  SpinBarrier barrier(2);
  std::atomic<uint64_t> slot{EptEntry::leaf(kFrame, Access::kAll).raw()};
  std::atomic<int> held_in_round{-1};
  std::atomic<uint64_t> lock_waits{0};  // spins of vCPU 1 on the leaf lock

  class CountingTargetWaiter final : public Waiter {
   public:
    CountingTargetWaiter(ShootdownTarget& target, std::atomic<uint64_t>& count)
        : inner_(target), count_(count) {}
    void on_wait() override {
      count_.fetch_add(1, std::memory_order_release);
      inner_.on_wait();
    }

   private:
    TargetWaiter inner_;
    std::atomic<uint64_t>& count_;
  };

  run_vcpu_threads(2, [&](int i) {
    Vcpu& self = vcpus[static_cast<size_t>(i)];
    TargetWaiter waiter(self.target);
    CountingTargetWaiter lock_waiter(self.target, lock_waits);
    for (int round = 0; round < kRounds; ++round) {
      barrier.arrive_and_wait(waiter);
      if (i == 0) {
        const uint64_t waits_before = lock_waits.load(std::memory_order_acquire);
        LeafLock leaf(slot, waiter);
        held_in_round.store(round, std::memory_order_release);
        while (lock_waits.load(std::memory_order_acquire) == waits_before) {
          waiter.on_wait();
        }
        ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
        batch.wait(waiter);
      } else {
        while (held_in_round.load(std::memory_order_acquire) != round) {
          waiter.on_wait();
        }
        LeafLock leaf(slot, lock_waiter);
      }
    }
    barrier.arrive_and_wait(waiter);
  });
  EXPECT_FALSE(EptEntry(slot.load()).locked());
  EXPECT_GE(vcpus[1].target.serviced(), static_cast<uint64_t>(kRounds));
}

TEST(ShootdownConcurrencyTest, KickRunsForARunningTarget) {
  Vcpu vcpu;
  std::atomic<int> kicks{0};
  vcpu.target.set_kick([&] { kicks.fetch_add(1, std::memory_order_release); });
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&vcpu.target));
  std::thread vcpu_thread([&] {
    // A vCPU that does not poll: it looks only when kicked.
    while (kicks.load(std::memory_order_acquire) == 0) {
      std::this_thread::yield();
    }
    vcpu.target.service();
  });
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  batch.wait(HostWaiter::instance());
  vcpu_thread.join();
  EXPECT_EQ(kicks.load(), 1);
}

TEST(ShootdownConcurrencyTest, RemovedTargetIsSkipped) {
  Vcpu serviced;
  Vcpu removed;  // running, but never services
  ShootdownDomain domain;
  EXPECT_TRUE(domain.add(&serviced.target));
  EXPECT_TRUE(domain.add(&removed.target));
  domain.remove(&removed.target);
  std::atomic<bool> stop{false};
  std::thread vcpu_thread([&] {
    while (!stop.load(std::memory_order_acquire)) {
      serviced.target.service();
      std::this_thread::yield();
    }
  });
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  batch.wait(HostWaiter::instance());
  stop.store(true, std::memory_order_release);
  vcpu_thread.join();
  EXPECT_FALSE(removed.target.pending()) << "no request was posted to it";
  EXPECT_TRUE(removed.target.running());
}

TEST(ShootdownConcurrencyTest, BatchWaitsForTheTargetItPostedToNotTheSlotsNextOccupant) {
  // The first vCPU acknowledges and leaves; a second one takes its slot and
  // never services. The batch posted to the first must complete.
  Vcpu first;
  Vcpu successor;  // running, but never services
  ShootdownDomain domain;
  ASSERT_TRUE(domain.add(&first.target));
  ShootdownBatch batch = ShootdownBatch::single_context(domain, kEptp);
  first.target.service();
  domain.remove(&first.target);
  ASSERT_TRUE(domain.add(&successor.target));
  std::thread waiter_thread([&] { (void)batch.wait(HostWaiter::instance()); });
  waiter_thread.join();
  EXPECT_FALSE(successor.target.pending()) << "nothing was posted to the successor";
}

}  // namespace
}  // namespace vmfork
