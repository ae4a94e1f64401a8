#include "vmm/bench/cow_bench.h"

#include <pthread.h>
#include <sched.h>
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

#include "base/waiter.h"
#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"
#include "vmm/bench/copy_scaling.h"
#include "vmm/bench/host_memory.h"
#include "vmm/bench/linux_baseline.h"
#include "vmm/bench/pool_warmup.h"
#include "vmm/bench/stats.h"
#include "vmm/cli/size_arg.h"
#include "vmm/clock.h"

namespace vmfork::bench {

namespace {

// The host has 2 cores. A shootdown that waits for a descheduled vCPU would
// measure the scheduler, so no round ever runs more busy threads than this
// (DESIGN section 10): 1 faulting thread + 1 acknowledging vCPU, or 2
// faulting threads that acknowledge each other.
constexpr int kBusyThreads = 2;
constexpr std::array<int, 2> kFaultingThreads{1, 2};

// One CPU per busy thread, from those the process may use; empty when
// there are too few (then the threads share, and spinners must yield).
std::vector<size_t> cpus_for_busy_threads() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<size_t> cpus;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return cpus;
  for (size_t cpu = 0; cpu < CPU_SETSIZE && cpus.size() < kBusyThreads; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  if (cpus.size() < kBusyThreads) cpus.clear();
  return cpus;
}

void pin_to_cpu(size_t cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  (void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
}

// A vCPU that spins on something checks for shootdowns on every spin. When
// the busy threads share a CPU it also yields now and then, or each wait
// for the other would last a scheduler time slice; on CPUs of their own it
// never does (a yield is a system call, during which it acknowledges
// nothing).
class Spinner {
 public:
  Spinner(VcpuMemory& vcpu, bool yield) : vcpu_(vcpu), yield_(yield) {}
  void spin() {
    vcpu_.check();
    if (yield_ && ++spins_ % 64 == 0) {
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }

 private:
  VcpuMemory& vcpu_;
  const bool yield_;
  uint32_t spins_ = 0;
};

// Releases every thread of a round at once. Waiting threads are vCPUs
// already in the shootdown domain, so they keep servicing while they wait.
class StartBarrier {
 public:
  explicit StartBarrier(int parties) : remaining_(parties) {}
  void arrive_and_wait(Spinner& spinner) {
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
    while (remaining_.load(std::memory_order_acquire) > 0)
      spinner.spin();
  }

 private:
  std::atomic<int> remaining_;
};

// Written once per thread at the end, padded: the faulting threads must not
// share a cache line through their bookkeeping.
struct alignas(64) ThreadTiming {
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t faults = 0;
  std::optional<Error> error;
};

struct RoundSync {
  RoundSync(int parties, std::span<const size_t> busy_cpus) : barrier(parties), cpus(busy_cpus) {}
  StartBarrier barrier;
  const std::span<const size_t> cpus;  // thread i runs on cpus[i]; empty: unpinned
  // Each busy thread starts here: on its own CPU, or yielding when shared.
  Spinner start(VcpuMemory& vcpu, int thread) const {
    if (!cpus.empty()) pin_to_cpu(cpus[static_cast<size_t>(thread)]);
    return Spinner(vcpu, cpus.empty());
  }
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
void fault_pages(VcpuMemory& vcpu, int thread, Gfn first, uint64_t pages, int faulting_threads,
                 RoundSync& sync, ThreadTiming& timing) {
  Spinner spinner = sync.start(vcpu, thread);
  sync.barrier.arrive_and_wait(spinner);
  const uint64_t start_ns = now_ns();
  uint64_t faults = 0;
  for (uint64_t i = 0; i < pages; ++i) {
    Result<std::byte*> host = vcpu.translate((first + i).gpa(), Access::kWrite);
    if (!host) {
      timing.error = host.error();
      break;
    }
    __atomic_store_n(reinterpret_cast<uint64_t*>(*host), first.value() + i, __ATOMIC_RELAXED);
    ++faults;
    vcpu.check();
  }
  timing.end_ns = now_ns();
  timing.start_ns = start_ns;
  timing.faults = faults;
  sync.faulting_done.fetch_add(1, std::memory_order_acq_rel);
  // Stay a running vCPU until the others are done: their shootdowns must be
  // acknowledged by a running vCPU, not skipped as they would be for a
  // parked one.
  while (sync.faulting_done.load(std::memory_order_acquire) < faulting_threads)
    spinner.spin();
}

// A running vCPU that faults on nothing: it reads its own page in a loop,
// checking for shootdowns between reads, so every INVEPT of the faulting
// thread waits for its acknowledgement.
void acknowledge_until_done(VcpuMemory& vcpu, int thread, Gfn own, int faulting_threads,
                            RoundSync& sync, ThreadTiming& timing) {
  Spinner spinner = sync.start(vcpu, thread);
  sync.barrier.arrive_and_wait(spinner);
  while (sync.faulting_done.load(std::memory_order_acquire) < faulting_threads) {
    spinner.spin();
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

Result<RoundResult> run_round(GuestMemory& memory, uint64_t ram_bytes, int faulting_threads,
                              std::span<const size_t> cpus) {
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

  RoundSync sync(threads, cpus);
  std::vector<ThreadTiming> timings(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    VcpuMemory& vcpu = *vcpus[static_cast<size_t>(i)];
    ThreadTiming& timing = timings[static_cast<size_t>(i)];
    const Gfn first(static_cast<uint64_t>(i) * pages_per_thread);
    if (i < faulting_threads) {
      workers.emplace_back([&, first, i] {
        fault_pages(vcpu, i, first, pages_per_thread, faulting_threads, sync, timing);
      });
    } else {
      // The last page of its half, which no thread writes.
      const Gfn own = first + (pages_per_thread - 1);
      workers.emplace_back(
          [&, own, i] { acknowledge_until_done(vcpu, i, own, faulting_threads, sync, timing); });
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
    return make_error(ErrorCode::kInternal, "expected " + std::to_string(result.faults) +
                                                " COW copies, counted " +
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
  // Touched: the kernel baseline's memory, the pool (a space and a copy of
  // each page), the plain-copy baseline's source and target.
  constexpr uint64_t kMaxBytes = uint64_t{1} << 40;
  if (options.ram_bytes > kMaxBytes) {
    return make_error(ErrorCode::kInvalidArgument, "the COW bench supports at most 1 TiB");
  }
  if (Result<void> fits = require_available_memory(5 * options.ram_bytes, "the COW bench"); !fits) {
    return fits.error();
  }
  const std::vector<size_t> cpus = cpus_for_busy_threads();
  if (cpus.empty()) {
    spdlog::warn(
        "cow bench: fewer than {} CPUs available: the busy threads share one, and the "
        "figures include the scheduler's time slices",
        kBusyThreads);
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
  PlainCopyBaseline plain_copy(options.ram_bytes);
  std::vector<double> plain_copy_ratios;
  for (int round = -1; round < options.rounds; ++round) {  // round -1 warms up
    const double plain_one = plain_copy.pages_per_sec(1);
    const double plain_two = plain_copy.pages_per_sec(2);
    if (round >= 0) plain_copy_ratios.push_back(plain_two / plain_one);
    for (size_t config = 0; config < kFaultingThreads.size(); ++config) {
      Result<RoundResult> result =
          run_round(**memory, options.ram_bytes, kFaultingThreads[config], cpus);
      if (!result) return result.error();
      spdlog::debug("cow bench: round {} threads {}: {:.1f} ns/fault, {:.0f} faults/s", round,
                    kFaultingThreads[config], result->ns_per_fault, result->faults_per_sec);
      if (round >= 0) rounds[config].push_back(*result);
    }
  }

  report.plain_copy_rate_2_over_1 = median(std::move(plain_copy_ratios));
  spdlog::info("cow bench: plain page copies, 2 threads over 1: {:.2f}x",
               report.plain_copy_rate_2_over_1);
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
