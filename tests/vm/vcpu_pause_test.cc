// VcpuPause: one holder at a time, every other running member parked while it
// holds the pause; refused requesters get it in the order they asked; nobody
// waits forever. Threads stand in for vCPUs.
#include "vmm/vm/vcpu_pause.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "tests/support/spin_barrier.h"

namespace vmfork {
namespace {

// A member that counts its parkings and tells whether it is parked.
class Member final : public PauseMember {
 public:
  void parking() override {
    parked.store(true);
    ++parkings;
  }
  void resuming() override { parked.store(false); }
  std::atomic<bool> parked{false};
  std::atomic<int> parkings{0};
};

std::unique_ptr<VcpuPause> pause_of(int running) {
  auto pause = std::make_unique<VcpuPause>();
  for (int i = 0; i < running; ++i)
    pause->add_running();
  return pause;
}

// Waits (without a deadline: the test's timeout is the bound) until `done`.
template <class Done>
void eventually(Done done) {
  while (!done())
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

TEST(VcpuPause, AloneTheHolderNeedsNobodyToPark) {
  auto pause = pause_of(1);
  Member a;
  ASSERT_TRUE(pause->try_take(a));
  pause->wait_until_others_parked(a);
  EXPECT_FALSE(pause->must_stop(&a));
  EXPECT_TRUE(pause->must_stop());
  pause->resume_others();
  EXPECT_FALSE(pause->must_stop());
}

TEST(VcpuPause, HolderWaitsUntilEveryOtherRunningMemberHasParked) {
  auto pause = pause_of(3);
  Member a, b, c;
  ASSERT_TRUE(pause->try_take(a));
  std::atomic<bool> alone{false};
  std::thread holder([&] {
    pause->wait_until_others_parked(a);
    alone.store(true);
  });
  EXPECT_TRUE(pause->must_stop(&b));
  std::thread parked_b([&] { EXPECT_TRUE(pause->park_until_resumed(b)); });
  eventually([&] { return b.parked.load(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(alone.load()) << "c still runs";
  EXPECT_EQ(pause->stopped(), 2u);  // c stops for good (it halted): nobody waits for it
  holder.join();
  EXPECT_TRUE(alone.load());
  EXPECT_TRUE(a.parked.load()) << "the holder is parked while it waits";
  pause->resume_others();
  parked_b.join();
  EXPECT_FALSE(b.parked.load());
}

TEST(VcpuPause, RefusedRequestersGetThePauseInTheOrderTheyAsked) {
  auto pause = pause_of(3);
  Member a, b, c;
  ASSERT_TRUE(pause->try_take(a));
  EXPECT_FALSE(pause->try_take(c));
  EXPECT_FALSE(pause->try_take(b));
  EXPECT_FALSE(pause->try_take(c)) << "asking again keeps c's place";
  pause->resume_others();
  EXPECT_FALSE(pause->must_stop(&c)) << "handed to c, first in line";
  EXPECT_TRUE(pause->must_stop(&a));
  EXPECT_TRUE(pause->must_stop(&b));
  EXPECT_TRUE(pause->try_take(c));
  pause->resume_others();
  EXPECT_FALSE(pause->must_stop(&b)) << "then b";
  EXPECT_TRUE(pause->try_take(b));
  pause->resume_others();
  EXPECT_FALSE(pause->must_stop());
}

TEST(VcpuPause, MemberParkedForOneHolderWakesWhenThePausePassesToAnother) {
  auto pause = pause_of(3);
  Member a, b, c;
  ASSERT_TRUE(pause->try_take(a));
  EXPECT_FALSE(pause->try_take(b));
  std::atomic<bool> c_resumed{false};
  std::thread parked_c([&] {
    EXPECT_TRUE(pause->park_until_resumed(c));
    c_resumed.store(true);
  });
  eventually([&] { return c.parked.load(); });
  std::thread parked_b([&] { EXPECT_TRUE(pause->park_until_resumed(b)); });
  eventually([&] { return b.parked.load(); });
  pause->wait_until_others_parked(a);
  pause->resume_others();  // to b
  parked_c.join();         // c runs again, although b holds the pause now
  EXPECT_TRUE(c_resumed.load());
  parked_b.join();
  // b does not count c as parked for it until c parks again.
  ASSERT_TRUE(pause->try_take(b));
  std::atomic<bool> alone{false};
  std::thread holder([&] {
    pause->wait_until_others_parked(b);
    alone.store(true);
  });
  std::thread parked_a([&] { EXPECT_TRUE(pause->park_until_resumed(a)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(alone.load());
  std::thread parked_c_again([&] { EXPECT_TRUE(pause->park_until_resumed(c)); });
  holder.join();
  pause->resume_others();
  parked_a.join();
  parked_c_again.join();
}

TEST(VcpuPause, TheEndReleasesEveryWait) {
  auto pause = pause_of(3);
  Member a, b, c;
  ASSERT_TRUE(pause->try_take(a));
  std::thread holder([&] { pause->wait_until_others_parked(a); });
  std::thread parked_b([&] { EXPECT_FALSE(pause->park_until_resumed(b)); });
  eventually([&] { return b.parked.load(); });
  pause->end();  // c never parks
  holder.join();
  parked_b.join();
  EXPECT_TRUE(pause->ending());
  EXPECT_TRUE(pause->must_stop(&a));
  EXPECT_FALSE(pause->park_until_resumed(c));
}

// Every thread runs "instructions" (loop iterations) and, often, asks for the
// pause to make a non-atomic increment of a shared counter, as a vCPU does for
// a split locked access: stopping and parking whenever another holds the
// pause, and running at least one instruction after it resumes. Nobody may
// deadlock or starve, and no increment may be lost.
TEST(VcpuPause, ManyRequestersAllFinishAndExcludeEachOther) {
  constexpr int kThreads = 4;
  constexpr int kSections = 2000;
  auto pause = pause_of(kThreads);
  std::atomic<uint64_t> counter{0};
  std::atomic<int> inside{0};
  testing::SpinBarrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      Member self;
      start.arrive_and_wait();
      int done = 0;
      bool resumed = false;
      uint64_t step = 0;
      while (done < kSections) {
        // A boundary: stop for another holder, unless just resumed.
        if (!resumed && pause->must_stop(&self)) {
          ASSERT_TRUE(pause->park_until_resumed(self));
          resumed = true;
          continue;
        }
        resumed = false;
        if (++step % 3 != 0) continue;         // a plain instruction
        if (!pause->try_take(self)) continue;  // refused: park at the next boundary
        pause->wait_until_others_parked(self);
        self.resuming();
        EXPECT_EQ(inside.fetch_add(1), 0);
        const uint64_t value = counter.load(std::memory_order_relaxed);
        std::this_thread::yield();  // without exclusion, another thread would run here
        counter.store(value + 1, std::memory_order_relaxed);
        inside.fetch_sub(1);
        pause->resume_others();
        ++done;
      }
      self.parking();
      pause->stopped();
    });
  }
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(counter.load(), uint64_t{kThreads} * kSections);
}

// From outside (a snapshot taken by a host thread): the holder runs no guest
// code, so every running member parks, and the host waits its turn behind
// queued vCPUs like any requester.
TEST(VcpuPause, AnOutsideHolderWaitsUntilEveryRunningMemberHasParked) {
  auto pause = pause_of(2);
  Member host, a, b;
  ASSERT_TRUE(pause->take_from_outside(host));
  EXPECT_TRUE(pause->must_stop(&a));
  EXPECT_TRUE(pause->must_stop(&b));
  std::atomic<bool> all_parked{false};
  std::thread waiter([&] { all_parked.store(pause->wait_until_all_parked()); });
  std::thread parked_a([&] { EXPECT_TRUE(pause->park_until_resumed(a)); });
  eventually([&] { return a.parked.load(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(all_parked.load()) << "b still runs";
  std::thread parked_b([&] { EXPECT_TRUE(pause->park_until_resumed(b)); });
  waiter.join();
  EXPECT_TRUE(all_parked.load());
  EXPECT_EQ(host.parkings.load(), 0) << "the outside holder never parks";
  pause->resume_others();
  parked_a.join();
  parked_b.join();
  EXPECT_FALSE(pause->must_stop());
}

TEST(VcpuPause, AnOutsideHolderTakesItsTurnBehindAVcpu) {
  auto pause = pause_of(2);
  Member host, a, b;
  ASSERT_TRUE(pause->try_take(a));
  std::atomic<bool> taken{false};
  std::thread outside([&] {
    taken.store(pause->take_from_outside(host));
    ASSERT_TRUE(pause->wait_until_all_parked());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(taken.load()) << "a holds the pause";
  pause->resume_others();  // handed to the host: a and b park for it
  eventually([&] { return taken.load(); });
  std::thread parked_a([&] { EXPECT_TRUE(pause->park_until_resumed(a)); });
  std::thread parked_b([&] { EXPECT_TRUE(pause->park_until_resumed(b)); });
  outside.join();
  pause->resume_others();
  parked_a.join();
  parked_b.join();
}

TEST(VcpuPause, TheEndRefusesAnOutsideHolderInLine) {
  auto pause = pause_of(1);
  Member host, a;
  ASSERT_TRUE(pause->try_take(a));
  std::atomic<int> result{-1};
  std::thread outside([&] { result.store(pause->take_from_outside(host) ? 1 : 0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pause->end();
  outside.join();
  EXPECT_EQ(result.load(), 0);
  pause->resume_others();
  EXPECT_TRUE(pause->must_stop()) << "ending";
}

}  // namespace
}  // namespace vmfork
