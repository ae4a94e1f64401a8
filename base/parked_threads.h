// Threads kept parked for work that must start at once. A VM's vCPUs run on
// them, so a fork's clones take threads instead of creating them on the
// request path (pthread_create, its stack and its TLS cost about 80 us a
// thread on this project's hosts, half of a soft clone's build).
//
// A background thread keeps `keep` threads parked: it replaces each one
// taken. A thread whose work returned parks again; the pool never shrinks,
// so it holds as many threads as ever ran work at once. Parked threads
// block every signal; work that wants one unblocks it (the kvm engine's
// kick), and the mask is blocked again after it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vmfork {

class ParkedThreads {
 public:
  // Work given to the pool: joinable until join() returned.
  class Job {
   public:
    Job() = default;
    bool joinable() const { return done_.valid(); }
    // Waits until the work returned.
    void join();

   private:
    friend class ParkedThreads;
    explicit Job(std::future<void> done) : done_(std::move(done)) {}
    std::future<void> done_;
  };

  // The process's pool, created on first use with its background thread.
  // Never destroyed: work may still run while static destructors do.
  static ParkedThreads& process();

  explicit ParkedThreads(size_t keep);
  // Every Job must have been joined.
  ~ParkedThreads();
  ParkedThreads(const ParkedThreads&) = delete;
  ParkedThreads& operator=(const ParkedThreads&) = delete;

  // Runs `work` on a parked thread, or on a new one when none is parked.
  // Throws std::system_error, as std::thread does, when the host refuses a
  // new thread.
  Job run(std::function<void()> work);

  // Threads made so far (by run() or in the background), and those parked now.
  uint64_t threads_made() const;
  size_t parked() const;

 private:
  struct Worker {
    std::condition_variable wake;  // with mutex_
    std::function<void()> work;    // guarded by mutex_: set with has_work
    std::promise<void> done;       // guarded by mutex_: set with has_work
    bool has_work = false;         // guarded by mutex_
    std::thread thread;            // guarded by mutex_
  };
  // Starts a thread for `worker`; it owns it from then on (in workers_).
  void start(std::unique_ptr<Worker> worker);
  void work_loop(Worker& worker);
  void refill_loop();

  const size_t keep_;
  mutable std::mutex mutex_;
  std::condition_variable refill_wanted_;         // with mutex_
  std::vector<std::unique_ptr<Worker>> workers_;  // guarded by mutex_: every thread's
  std::vector<Worker*> parked_;                   // guarded by mutex_: last parked at the back
  uint64_t made_ = 0;                             // guarded by mutex_
  bool stopping_ = false;                         // guarded by mutex_
  std::thread refiller_;
};

}  // namespace vmfork
