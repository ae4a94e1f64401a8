#include "vmm/kvm/halt_watch.h"

#include <algorithm>

namespace vmfork::kvm {

namespace {

constexpr std::chrono::milliseconds kFirstInterval{1};
constexpr std::chrono::milliseconds kLongestInterval{32};

}  // namespace

HaltWatch::~HaltWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<HaltWatch::Registration> HaltWatch::watch(const VcpuStat& emulations,
                                                          const std::atomic<uint64_t>& exits,
                                                          Handler on_halt) {
  std::lock_guard lock(mutex_);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  entries_.push_front(Entry{.emulations = &emulations,
                            .exits = &exits,
                            .emulations_seen = emulations.read(),
                            .exits_seen = exits.load(std::memory_order_acquire),
                            .on_halt = std::move(on_halt),
                            .interval = kFirstInterval,
                            .due = Clock::now() + kFirstInterval});
  changed_.notify_all();
  return std::make_unique<Registration>(*this, entries_.begin());
}

void HaltWatch::forget(std::list<Entry>::iterator entry) {
  // Under the lock: a handler in progress finishes first.
  std::lock_guard lock(mutex_);
  entries_.erase(entry);
}

void HaltWatch::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (entries_.empty()) {
      changed_.wait(lock, [this] { return stopping_ || !entries_.empty(); });
      continue;
    }
    const Clock::time_point now = Clock::now();
    Clock::time_point next = now + kLongestInterval;
    for (Entry& entry : entries_) {
      if (entry.due <= now) {
        // Exits first: an emulated `out` counted before its exit is, at
        // worst, a kick for nothing.
        const uint64_t exits = entry.exits->load(std::memory_order_acquire);
        const uint64_t emulations = entry.emulations->read();
        const bool silent = emulations != entry.emulations_seen && exits == entry.exits_seen;
        const bool busy = emulations != entry.emulations_seen || exits != entry.exits_seen;
        entry.emulations_seen = emulations;
        entry.exits_seen = exits;
        if (silent) entry.on_halt();
        if (busy) {
          entry.interval = kFirstInterval;
        } else {
          entry.interval = std::min<Clock::duration>(entry.interval * 2, kLongestInterval);
        }
        entry.due = now + entry.interval;
      }
      next = std::min(next, entry.due);
    }
    changed_.wait_until(lock, next);  // or sooner: a new entry, or the end
  }
}

}  // namespace vmfork::kvm
