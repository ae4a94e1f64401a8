#include "vmm/bench/cow_bench.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ept/waiter.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"
#include "vmm/bench/clock.h"
#include "vmm/bench/linux_baseline.h"
#include "vmm/bench/pool_warmup.h"
#include "vmm/bench/stats.h"
#include "vmm/cli/size_arg.h"

namespace vmfork::bench {

namespace {

// The host has 2 cores. A shootdown that waits for a descheduled vCPU would
// measure the scheduler, so no round ever runs more busy threads than this
// (DESIGN section 10): 1 faulting thread + 1 acknowledging vCPU, or 2
// faulting threads that acknowledge each other.
constexpr int kBusyThreads = 2;
constexpr std::array<int, 2> kFaultingThreads{1, 2};

// Releases every thread of a round at once. Waiting threads are vCPUs
// already in the shootdown domain, so they keep servicing while they wait.
class StartBarrier {
 public:
  explicit StartBarrier(int parties) : remaining_(parties) {}
  void arrive_and_wait(VcpuMemory& vcpu) {
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
    while (remaining_.load(std::memory_order_acquire) > 0) {
      vcpu.check();
      cpu_relax();
    }
  }

 private:
  std::atomic<int> remaining_;
};

struct ThreadTiming {
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t faults = 0;
  std::optional<Error> error;
};

struct RoundSync {
  explicit RoundSync(int parties) : barrier(parties) {}
  StartBarrier barrier;
  std::atomic<int> faulting_done{0};
};

struct RoundResult {
  double ns_per_fault = 0;  // mean over the faulting threads
  double faults_per_sec = 0;
  uint64_t faults = 0;
  uint64_t shootdowns = 0;
};

// A faulting vCPU: one guest word store to each of its pages, a check()
// between stores as the soft engine does once per basic block. Every store
// hits a read-only shared page, so each one is one COW fault.
void fault_pages(VcpuMemory& vcpu, Gfn first, uint64_t pages, int faulting_threads, RoundSync& sync,
                 ThreadTiming& timing) {
  sync.barrier.arrive_and_wait(vcpu);
  timing.start_ns = now_ns();
  for (uint64_t i = 0; i < pages; ++i) {
    Result<std::byte*> host = vcpu.translate((first + i).gpa(), Access::kWrite);
    if (!host) {
      timing.error = host.error();
      break;
    }
    __atomic_store_n(reinterpret_cast<uint64_t*>(*host), first.value() + i, __ATOMIC_RELAXED);
    ++timing.faults;
    vcpu.check();
  }
  timing.end_ns = now_ns();
  sync.faulting_done.fetch_add(1, std::memory_order_acq_rel);
  // Stay a running vCPU until the others are done: their shootdowns must be
  // acknowledged by a running vCPU, not skipped as they would be for a
  // parked one.
  while (sync.faulting_done.load(std::memory_order_acquire) < faulting_threads) {
    vcpu.check();
    cpu_relax();
  }
}

// A running vCPU that faults on nothing: it reads its own page in a loop,
// checking for shootdowns between reads, so every INVEPT of the faulting
// thread waits for its acknowledgement.
void acknowledge_until_done(VcpuMemory& vcpu, Gfn own, int faulting_threads, RoundSync& sync,
                            ThreadTiming& timing) {
  sync.barrier.arrive_and_wait(vcpu);
  while (sync.faulting_done.load(std::memory_order_acquire) < faulting_threads) {
    vcpu.check();
    Result<std::byte*> host = vcpu.translate(own.gpa(), Access::kRead);
    if (!host) {
      timing.error = host.error();
      break;
    }
    (void)__atomic_load_n(reinterpret_cast<const uint64_t*>(*host), __ATOMIC_RELAXED);
  }
}

// A space whose every page holds data of its own and is then snapshotted:
// every page is shared read-only, and every first write to it is a COW fault.
struct SharedSpace {
  std::unique_ptr<AddressSpace> space;
  std::unique_ptr<MemorySnapshot> snapshot;
};

Result<SharedSpace> make_shared_space(GuestMemory& memory, uint64_t ram_bytes) {
  SharedSpace shared;
  Result<std::unique_ptr<AddressSpace>> space = memory.create_space("cow", ram_bytes);
  if (!space) return space.error();
  shared.space = std::move(*space);
  if (Result<void> populated = shared.space->populate(Gpa(0), ram_bytes); !populated) {
    return populated.error();
  }
  for (uint64_t gfn = 0; gfn < ram_bytes / kPageSize; ++gfn) {
    const uint64_t word = ~gfn;
    if (Result<void> written =
            shared.space->write(Gfn(gfn).gpa(), std::as_bytes(std::span<const uint64_t>(&word, 1)));
        !written) {
      return written.error();
    }
  }
  Result<std::unique_ptr<MemorySnapshot>> snapshot = shared.space->snapshot("base");
  if (!snapshot) return snapshot.error();
  shared.snapshot = std::move(*snapshot);
  return shared;
}

Result<RoundResult> run_round(GuestMemory& memory, uint64_t ram_bytes, int faulting_threads) {
  Result<SharedSpace> shared = make_shared_space(memory, ram_bytes);
  if (!shared) return shared.error();
  AddressSpace& space = *shared->space;
  const FaultCounters before = space.counters();

  const uint64_t pages_per_thread = ram_bytes / kPageSize / kBusyThreads;
  const int threads = kBusyThreads;  // faulting ones first, then acknowledging ones
  std::vector<std::unique_ptr<VcpuMemory>> vcpus;
  for (int i = 0; i < threads; ++i) {
    Result<std::unique_ptr<VcpuMemory>> vcpu = VcpuMemory::create(space);
    if (!vcpu) return vcpu.error();
    vcpus.push_back(std::move(*vcpu));
  }

  RoundSync sync(threads);
  std::vector<ThreadTiming> timings(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    VcpuMemory& vcpu = *vcpus[static_cast<size_t>(i)];
    ThreadTiming& timing = timings[static_cast<size_t>(i)];
    const Gfn first(static_cast<uint64_t>(i) * pages_per_thread);
    if (i < faulting_threads) {
      workers.emplace_back([&, first] {
        fault_pages(vcpu, first, pages_per_thread, faulting_threads, sync, timing);
      });
    } else {
      // The last page of its half, which no thread writes.
      const Gfn own = first + (pages_per_thread - 1);
      workers.emplace_back(
          [&, own] { acknowledge_until_done(vcpu, own, faulting_threads, sync, timing); });
    }
  }
  for (std::thread& worker : workers)
    worker.join();
  for (const ThreadTiming& timing : timings) {
    if (timing.error) return *timing.error;
  }

  RoundResult result;
  uint64_t first_start = ~uint64_t{0};
  uint64_t last_end = 0;
  for (int i = 0; i < faulting_threads; ++i) {
    const ThreadTiming& timing = timings[static_cast<size_t>(i)];
    result.ns_per_fault += static_cast<double>(timing.end_ns - timing.start_ns) /
                           static_cast<double>(timing.faults) / faulting_threads;
    result.faults += timing.faults;
    first_start = std::min(first_start, timing.start_ns);
    last_end = std::max(last_end, timing.end_ns);
  }
  result.faults_per_sec =
      static_cast<double>(result.faults) * 1e9 / static_cast<double>(last_end - first_start);

  // Every store must have been a full COW fault: a copy and a shootdown.
  const FaultCounters after = space.counters();
  result.shootdowns = after.shootdowns - before.shootdowns;
  if (after.copies - before.copies != result.faults) {
    return make_error(ErrorCode::kInvalidArgument,
                      "expected " + std::to_string(result.faults) + " COW copies, counted " +
                          std::to_string(after.copies - before.copies));
  }

  // vCPUs leave before their space goes; then nothing is online and two
  // reclamation passes return every frame of the round to the free list.
  vcpus.clear();
  shared->snapshot.reset();
  shared->space.reset();
  memory.reclaimer().collect();
  memory.reclaimer().collect();
  return result;
}

}  // namespace

Result<CowBenchReport> run_cow_bench(const CowBenchOptions& options) {
  const uint64_t pages = options.ram_bytes / kPageSize;
  if (pages < 2 * kBusyThreads) {
    return make_error(ErrorCode::kInvalidArgument, "the COW bench needs at least 16 KiB");
  }
  CowBenchReport report;
  report.ram_bytes = options.ram_bytes;
  report.rounds = options.rounds;

  // First, while this process has no other thread and no pool: it forks.
  Result<double> kernel = kernel_cow_ns_per_fault_median(options.ram_bytes, options.kernel_repeat);
  if (!kernel) return kernel.error();
  report.kernel_cow_ns_per_fault_median = *kernel;
  spdlog::info("cow bench: kernel COW fault median {:.1f} ns", *kernel);

  // Room for the space and one copy of every page, plus tables; all of it
  // host-populated now, so no copy takes a host page fault.
  const uint64_t pool_bytes = 2 * options.ram_bytes + options.ram_bytes / 64 + (uint64_t{8} << 20);
  Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = pool_bytes, .populate = Populate::kOnDemand});
  if (!memory) return memory.error();
  if (Result<void> warm = populate_pool_now(**memory); !warm) return warm.error();

  // Rounds of the two configurations alternate, so that a disturbance of
  // the shared host spreads over both rather than skewing their ratio.
  std::array<std::vector<RoundResult>, kFaultingThreads.size()> rounds;
  for (int round = -1; round < options.rounds; ++round) {  // round -1 warms up
    for (size_t config = 0; config < kFaultingThreads.size(); ++config) {
      Result<RoundResult> result = run_round(**memory, options.ram_bytes, kFaultingThreads[config]);
      if (!result) return result.error();
      spdlog::debug("cow bench: round {} threads {}: {:.1f} ns/fault, {:.0f} faults/s", round,
                    kFaultingThreads[config], result->ns_per_fault, result->faults_per_sec);
      if (round >= 0) rounds[config].push_back(*result);
    }
  }

  for (size_t config = 0; config < kFaultingThreads.size(); ++config) {
    CowThreadsRow row;
    row.threads = kFaultingThreads[config];
    row.acking_vcpus = kBusyThreads - 1;  // a partner either way: the other thread
    row.faults_per_thread = pages / kBusyThreads;
    std::vector<double> ns_per_fault;
    std::vector<double> rates;
    double shootdowns = 0;
    double faults = 0;
    for (const RoundResult& result : rounds[config]) {
      ns_per_fault.push_back(result.ns_per_fault);
      rates.push_back(result.faults_per_sec);
      shootdowns += static_cast<double>(result.shootdowns);
      faults += static_cast<double>(result.faults);
    }
    row.ns_per_fault_median = median(std::move(ns_per_fault));
    row.faults_per_sec = median(std::move(rates));
    row.shootdowns_per_fault = shootdowns / faults;
    spdlog::info("cow bench: {} faulting thread(s): {:.1f} ns/fault, {:.0f} faults/s", row.threads,
                 row.ns_per_fault_median, row.faults_per_sec);
    report.threads.push_back(row);
  }
  return report;
}

}  // namespace vmfork::bench
