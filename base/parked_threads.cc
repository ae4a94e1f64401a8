#include "base/parked_threads.h"

#include <pthread.h>
#include <signal.h>

#include <system_error>

namespace vmfork {

namespace {

// Parked in the process's pool: as many as a fork of a few clones with a
// few vCPUs each takes at once.
constexpr size_t kProcessKeep = 16;

void block_all_signals() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
}

}  // namespace

void ParkedThreads::Job::join() {
  done_.get();
}

ParkedThreads& ParkedThreads::process() {
  static ParkedThreads* const pool = new ParkedThreads(kProcessKeep);
  return *pool;
}

ParkedThreads::ParkedThreads(size_t keep) : keep_(keep) {
  refiller_ = std::thread([this] { refill_loop(); });
}

ParkedThreads::~ParkedThreads() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  refill_wanted_.notify_all();
  refiller_.join();
  // No thread is made from now on. Each waits with stopping_ in its
  // predicate: one not yet waiting sees it, one waiting is woken here.
  std::vector<std::unique_ptr<Worker>> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  for (const std::unique_ptr<Worker>& worker : workers) {
    worker->wake.notify_one();
    worker->thread.join();
  }
}

ParkedThreads::Job ParkedThreads::run(std::function<void()> work) {
  std::promise<void> done;
  Job job(done.get_future());
  std::unique_lock lock(mutex_);
  if (parked_.empty()) {
    refill_wanted_.notify_one();
    lock.unlock();
    auto worker = std::make_unique<Worker>();
    worker->work = std::move(work);
    worker->done = std::move(done);
    worker->has_work = true;
    start(std::move(worker));
    return job;
  }
  Worker* worker = parked_.back();
  parked_.pop_back();
  worker->work = std::move(work);
  worker->done = std::move(done);
  worker->has_work = true;
  if (parked_.size() < keep_) refill_wanted_.notify_one();
  // A worker with work leaves its loop only after running it: it is still
  // there for the notification.
  lock.unlock();
  worker->wake.notify_one();
  return job;
}

uint64_t ParkedThreads::threads_made() const {
  std::lock_guard lock(mutex_);
  return made_;
}

size_t ParkedThreads::parked() const {
  std::lock_guard lock(mutex_);
  return parked_.size();
}

void ParkedThreads::start(std::unique_ptr<Worker> worker) {
  Worker* raw = worker.get();
  std::thread thread([this, raw] { work_loop(*raw); });  // may throw: nothing to undo
  std::lock_guard lock(mutex_);
  raw->thread = std::move(thread);
  workers_.push_back(std::move(worker));
  ++made_;
}

void ParkedThreads::work_loop(Worker& worker) {
  block_all_signals();
  std::unique_lock lock(mutex_);
  for (;;) {
    worker.wake.wait(lock, [&] { return worker.has_work || stopping_; });
    if (!worker.has_work) return;
    std::function<void()> work = std::move(worker.work);
    std::promise<void> done = std::move(worker.done);
    worker.work = nullptr;
    worker.has_work = false;
    lock.unlock();
    work();
    work = nullptr;  // what it captured goes before its Job is done
    block_all_signals();
    done.set_value();
    lock.lock();
    if (stopping_) return;
    parked_.push_back(&worker);
  }
}

void ParkedThreads::refill_loop() {
  block_all_signals();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (parked_.size() >= keep_) {
      refill_wanted_.wait(lock);
      continue;
    }
    lock.unlock();
    auto worker = std::make_unique<Worker>();
    Worker* raw = worker.get();
    bool started = true;
    try {
      start(std::move(worker));
    } catch (const std::system_error&) {
      started = false;  // the host's thread limit: try again at the next run()
    }
    lock.lock();
    if (started) {
      parked_.push_back(raw);
    } else if (!stopping_) {
      refill_wanted_.wait(lock);
    }
  }
}

}  // namespace vmfork
