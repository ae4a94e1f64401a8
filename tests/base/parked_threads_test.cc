// ParkedThreads: work runs on a thread of the pool at once, join() waits for
// it, a thread whose work returned parks again (so sequential work reuses
// threads), work given at once runs at once (each on its own thread), and
// the pool's threads block every signal between works.
//
// Waits here are bounded only to turn a hang into a failure: 60 s is not a
// timing assumption.
#include "base/parked_threads.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>
#include <vector>

namespace vmfork {
namespace {

constexpr auto kHangLimit = std::chrono::seconds(60);

// Polls `done` until it holds or kHangLimit passes.
bool eventually(const std::function<bool()>& done) {
  const auto limit = std::chrono::steady_clock::now() + kHangLimit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::yield();
  }
  return true;
}

bool all_parked(const ParkedThreads& pool) {
  return eventually([&] { return pool.parked() == pool.threads_made(); });
}

bool blocked_here(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

TEST(ParkedThreads, JoinWaitsForTheWork) {
  ParkedThreads pool(2);
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> finished{false};
  ParkedThreads::Job job = pool.run([&] {
    opened.wait();
    finished = true;
  });
  EXPECT_TRUE(job.joinable());
  EXPECT_FALSE(finished);
  gate.set_value();
  job.join();
  EXPECT_TRUE(finished);
  EXPECT_FALSE(job.joinable());
}

TEST(ParkedThreads, KeepsThreadsParkedAhead) {
  ParkedThreads pool(3);
  EXPECT_TRUE(eventually([&] { return pool.parked() == 3; }));
  EXPECT_EQ(pool.threads_made(), 3u);
}

TEST(ParkedThreads, SequentialWorkReusesThreads) {
  // Each work's thread parks again: the pool never makes more than it keeps
  // plus the one taken. A thread that ended after its work would make the
  // pool replace it each time.
  constexpr size_t kKeep = 2;
  ParkedThreads pool(kKeep);
  for (int i = 0; i < 20; ++i) {
    ParkedThreads::Job job = pool.run([] {});
    job.join();
    ASSERT_TRUE(all_parked(pool)) << "a thread did not park again after work " << i;
  }
  EXPECT_LE(pool.threads_made(), kKeep + 1);
}

TEST(ParkedThreads, WorkGivenAtOnceRunsAtOnce) {
  // Every work waits until all have started: it cannot finish unless each
  // has a thread of its own, more than the pool keeps.
  constexpr int kWorks = 8;
  ParkedThreads pool(2);
  std::atomic<int> started{0};
  std::atomic<bool> all_started{false};
  std::vector<ParkedThreads::Job> jobs;
  for (int i = 0; i < kWorks; ++i) {
    jobs.push_back(pool.run([&] {
      started.fetch_add(1);
      (void)eventually([&] { return started.load() == kWorks; });
      if (started.load() == kWorks) all_started = true;
    }));
  }
  for (ParkedThreads::Job& job : jobs)
    job.join();
  EXPECT_TRUE(all_started);
  EXPECT_GE(pool.threads_made(), static_cast<uint64_t>(kWorks));
}

TEST(ParkedThreads, ThreadsBlockEverySignalBetweenWorks) {
  // Keeping none ahead: the second work runs on the first one's thread.
  ParkedThreads pool(0);
  std::thread::id first_thread;
  bool first_blocked = false;
  ParkedThreads::Job first = pool.run([&] {
    first_thread = std::this_thread::get_id();
    first_blocked = blocked_here(SIGINT) && blocked_here(SIGTERM) && blocked_here(SIGUSR1);
    // As the kvm engine's vCPU does for its kick.
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
  });
  first.join();
  ASSERT_TRUE(all_parked(pool));
  std::thread::id second_thread;
  bool second_blocked = false;
  ParkedThreads::Job second = pool.run([&] {
    second_thread = std::this_thread::get_id();
    second_blocked = blocked_here(SIGUSR1);
  });
  second.join();
  EXPECT_TRUE(first_blocked);
  EXPECT_EQ(second_thread, first_thread);
  EXPECT_TRUE(second_blocked) << "a work's signal mask outlived it";
  EXPECT_EQ(pool.threads_made(), 1u);
}

TEST(ParkedThreads, WhatTheWorkCapturedIsGoneWhenJoinReturns) {
  // A capture whose destructor takes a while: join() must wait for it too
  // (a vCPU's work may hold what its VM's destructor then frees).
  struct SlowToDestroy {
    std::atomic<bool>* destroyed;
    ~SlowToDestroy() {
      if (destroyed == nullptr) return;  // moved from
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      destroyed->store(true);
    }
    explicit SlowToDestroy(std::atomic<bool>* flag) : destroyed(flag) {}
    SlowToDestroy(SlowToDestroy&& other) noexcept : destroyed(other.destroyed) {
      other.destroyed = nullptr;
    }
    SlowToDestroy(const SlowToDestroy&) = delete;
  };
  ParkedThreads pool(1);
  std::atomic<bool> destroyed{false};
  auto captured = std::make_shared<SlowToDestroy>(&destroyed);
  ParkedThreads::Job job = pool.run([held = std::move(captured)] { (void)held; });
  job.join();
  EXPECT_TRUE(destroyed) << "join() returned before the work's captures were destroyed";
}

}  // namespace
}  // namespace vmfork
