// Randomized property test of the guest memory manager. Up to eight address
// spaces and a few snapshots live at once; random operations create, clone,
// snapshot, spawn, write (from the host and through a vCPU), read, populate
// and destroy them. A plain reference model (each space's bytes, sparse by
// page, copied on clone) predicts every read, and after every operation the
// accounting must add up: every reference held is counted, every frame is
// in exactly one state, and every exclusive frame belongs to one root. At
// the end, with everything destroyed and reclaimed, no frame is left.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr size_t kMaxSpaces = 8;
constexpr size_t kMaxSnapshots = 3;
constexpr uint64_t kPoolBytes = 64 * kMiB;
constexpr uint64_t kHotWindowPages = 12;

// Guest RAM sizes: a small VM, and one that spans three PDPT entries.
constexpr uint64_t kRamSizes[] = {8 * kMiB, 2 * kGiB + 64 * kMiB};

// Where writes land: a window of pages around each of these, so that tables
// at every level are shared, copied and unshared in place, and accesses
// cross 4 KiB, 2 MiB and 1 GiB boundaries.
constexpr uint64_t kHotSpots[] = {
    0, kMiB, 2 * kMiB, 6 * kMiB, 64 * kMiB, kGiB, kGiB + 2 * kMiB, 2 * kGiB, 2 * kGiB + 62 * kMiB,
};

// A space's contents: the bytes of every page ever written; absent = zero.
using Model = std::map<uint64_t, std::vector<uint8_t>>;

void model_write(Model& model, uint64_t gpa, const std::vector<uint8_t>& data) {
  for (size_t done = 0; done < data.size();) {
    const uint64_t at = gpa + done;
    const size_t offset = at % kPageSize;
    const size_t chunk = std::min<size_t>(data.size() - done, kPageSize - offset);
    std::vector<uint8_t>& page = model[at / kPageSize];
    if (page.empty()) page.resize(kPageSize);
    std::memcpy(page.data() + offset, data.data() + done, chunk);
    done += chunk;
  }
}

std::vector<uint8_t> model_read(const Model& model, uint64_t gpa, size_t size) {
  std::vector<uint8_t> out(size);
  for (size_t done = 0; done < size;) {
    const uint64_t at = gpa + done;
    const size_t offset = at % kPageSize;
    const size_t chunk = std::min<size_t>(size - done, kPageSize - offset);
    if (auto page = model.find(at / kPageSize); page != model.end()) {
      std::memcpy(out.data() + done, page->second.data() + offset, chunk);
    }
    done += chunk;
  }
  return out;
}

struct LiveSpace {
  std::unique_ptr<AddressSpace> space;
  std::unique_ptr<VcpuMemory> vcpu;  // parked whenever the test is not using it
  Model model;
  // Pages the vCPU touched lately. Going back to them makes its cached
  // translations matter: after a clone, a snapshot or a host COW of the page,
  // a translation it kept must have been flushed.
  std::vector<uint64_t> vcpu_gfns;
};

struct LiveSnapshot {
  std::unique_ptr<MemorySnapshot> snapshot;
  Model model;
};

class PropertyRun {
 public:
  explicit PropertyRun(uint64_t seed) : random_(seed), memory_(make_memory(kPoolBytes)) {}

  void run(int operations) {
    for (int op = 0; op < operations; ++op) {
      SCOPED_TRACE("operation " + std::to_string(op) + ": " + last_);
      step();
      if (::testing::Test::HasFatalFailure()) return;
      check_accounting();
      if (op % 32 == 31) check_everything();
      if (::testing::Test::HasFatalFailure()) return;
    }
    check_everything();
  }

  void tear_down_and_check_no_leak() {
    while (!spaces_.empty())
      destroy_space(0);
    snapshots_.clear();
    // The run reached every kind of fault (else it proves little).
    EXPECT_GT(exercised_.copies, 0u);
    EXPECT_GT(exercised_.in_place, 0u);
    EXPECT_GT(exercised_.demand_zero, 0u);
    ASSERT_TRUE(reclaim_all(*memory_));
    const FrameCounts counts = memory_->frame_counts();
    EXPECT_EQ(counts.data, 0u);
    EXPECT_EQ(counts.table, 0u);
    EXPECT_EQ(counts.reclaiming, 0u);
    EXPECT_EQ(counts.free, counts.capacity) << "frames leaked";
    EXPECT_TRUE(IsOk(memory_->verify_references()));
  }

 private:
  uint64_t below(uint64_t bound) {
    return std::uniform_int_distribution<uint64_t>(0, bound - 1)(random_);
  }
  bool chance(uint64_t percent) { return below(100) < percent; }

  std::vector<uint8_t> random_bytes(size_t size) {
    std::vector<uint8_t> bytes(size);
    // Mostly noise, sometimes zeros (which the model must not confuse with
    // "never written").
    const bool zeros = chance(10);
    for (uint8_t& b : bytes)
      b = zeros ? 0 : static_cast<uint8_t>(random_() & 0xff);
    return bytes;
  }

  // A random range inside `ram` near a hot spot.
  std::pair<uint64_t, size_t> random_range(uint64_t ram, size_t max_size) {
    std::vector<uint64_t> spots;
    for (uint64_t spot : kHotSpots) {
      if (spot < ram) spots.push_back(spot);
    }
    spots.push_back(ram - kPageSize);  // the last page
    const uint64_t spot = spots[below(spots.size())];
    const uint64_t low =
        spot >= kHotWindowPages / 2 * kPageSize ? spot - kHotWindowPages / 2 * kPageSize : 0;
    uint64_t gpa = low + below(kHotWindowPages * kPageSize);
    gpa = std::min(gpa, ram - 1);
    size_t size = chance(70) ? 1 + below(64) : 1 + below(max_size);
    size = std::min<size_t>(size, ram - gpa);
    return {gpa, size};
  }

  void step() {
    const uint64_t roll = below(100);
    if (spaces_.empty() || (roll < 6 && spaces_.size() < kMaxSpaces)) return create_space();
    if (roll < 14 && spaces_.size() < kMaxSpaces) return clone_space();
    if (roll < 18 && snapshots_.size() < kMaxSnapshots) return snapshot_and_spawn();
    if (roll < 22 && !snapshots_.empty() && spaces_.size() < kMaxSpaces) return spawn();
    if (roll < 24 && !snapshots_.empty()) return destroy_snapshot();
    if (roll < 46) return host_write();
    if (roll < 64) return vcpu_write();
    if (roll < 74) return host_read();
    if (roll < 82) return vcpu_read();
    if (roll < 86) return populate();
    if (roll < 88) return out_of_range();
    if (roll < 90) {
      last_ = "collect";
      memory_->reclaimer().collect();
      return;
    }
    if (spaces_.size() > 1) return destroy_space(below(spaces_.size()));
    return host_write();
  }

  // Built with append, not operator+: GCC 12 -O3 warns (-Wrestrict) falsely
  // on `"literal" + std::to_string(n)`.
  std::string fresh_name(const char* prefix) {
    std::string name(prefix);
    name.append(std::to_string(next_name_++));
    return name;
  }

  void add_space(std::unique_ptr<AddressSpace> space, Model model) {
    LiveSpace live;
    live.space = std::move(space);
    live.vcpu = unwrap(VcpuMemory::create(*live.space));
    live.vcpu->park();
    live.model = std::move(model);
    spaces_.push_back(std::move(live));
  }

  void create_space() {
    const uint64_t ram = kRamSizes[below(std::size(kRamSizes))];
    last_ = "create space of " + std::to_string(ram) + " bytes";
    add_space(unwrap(memory_->create_space(fresh_name("s"), ram)), Model{});
  }

  void clone_space() {
    const size_t source = below(spaces_.size());
    last_ = "clone " + spaces_[source].space->name();
    // The source's vCPU is parked: stopped at an instruction boundary.
    std::unique_ptr<AddressSpace> clone = unwrap(spaces_[source].space->clone(fresh_name("s")));
    add_space(std::move(clone), spaces_[source].model);
  }

  void snapshot_and_spawn() {
    const size_t source = below(spaces_.size());
    last_ = "snapshot " + spaces_[source].space->name();
    LiveSnapshot snapshot;
    snapshot.snapshot = unwrap(spaces_[source].space->snapshot(fresh_name("snap")));
    snapshot.model = spaces_[source].model;
    snapshots_.push_back(std::move(snapshot));
    const uint64_t clones = 1 + below(2);
    for (uint64_t i = 0; i < clones && spaces_.size() < kMaxSpaces; ++i)
      spawn_from(snapshots_.size() - 1);
  }

  void spawn() { spawn_from(below(snapshots_.size())); }

  void spawn_from(size_t index) {
    last_ = "spawn from " + snapshots_[index].snapshot->name();
    add_space(unwrap(snapshots_[index].snapshot->spawn(fresh_name("s"))), snapshots_[index].model);
  }

  void destroy_snapshot() {
    const size_t index = below(snapshots_.size());
    last_ = "destroy " + snapshots_[index].snapshot->name();
    snapshots_.erase(snapshots_.begin() + static_cast<ptrdiff_t>(index));
  }

  void destroy_space(size_t index) {
    last_ = "destroy " + spaces_[index].space->name();
    const FaultCounters counters = spaces_[index].space->counters();
    exercised_.copies += counters.copies;
    exercised_.in_place += counters.in_place;
    exercised_.demand_zero += counters.demand_zero;
    spaces_[index].vcpu.reset();  // vCPUs leave before their space goes
    spaces_.erase(spaces_.begin() + static_cast<ptrdiff_t>(index));
  }

  void host_write() {
    LiveSpace& live = spaces_[below(spaces_.size())];
    // Half the time where the space's vCPU has been: the host's COW of a page
    // must shoot down the (parked) vCPU's translation of it.
    const auto [gpa, size] = chance(50) ? vcpu_range(live, 3 * kPageSize)
                                        : random_range(live.space->ram_bytes(), 3 * kPageSize);
    last_ = "host write " + live.space->name() + " at " + std::to_string(gpa) + " size " +
            std::to_string(size);
    const std::vector<uint8_t> data = random_bytes(size);
    unwrap(live.space->write(Gpa(gpa), std::as_bytes(std::span(data))));
    model_write(live.model, gpa, data);
    check_range(live, gpa, size);
  }

  // Mostly a page the vCPU touched lately, else anywhere near a hot spot.
  std::pair<uint64_t, size_t> vcpu_range(const LiveSpace& live, size_t max_size) {
    if (live.vcpu_gfns.empty() || chance(40))
      return random_range(live.space->ram_bytes(), max_size);
    const uint64_t gpa =
        live.vcpu_gfns[below(live.vcpu_gfns.size())] * kPageSize + below(kPageSize);
    const size_t size = 1 + below(std::min<uint64_t>(64, live.space->ram_bytes() - gpa));
    return {gpa, size};
  }

  void remember_vcpu_pages(LiveSpace& live, uint64_t gpa, size_t size) {
    for (uint64_t gfn = gpa / kPageSize; gfn <= (gpa + size - 1) / kPageSize; ++gfn) {
      if (std::find(live.vcpu_gfns.begin(), live.vcpu_gfns.end(), gfn) != live.vcpu_gfns.end()) {
        continue;
      }
      if (live.vcpu_gfns.size() == 8) live.vcpu_gfns.erase(live.vcpu_gfns.begin());
      live.vcpu_gfns.push_back(gfn);
    }
  }

  void vcpu_write() {
    LiveSpace& live = spaces_[below(spaces_.size())];
    const auto [gpa, size] = vcpu_range(live, 2 * kPageSize);
    last_ = "vcpu write " + live.space->name() + " at " + std::to_string(gpa) + " size " +
            std::to_string(size);
    const std::vector<uint8_t> data = random_bytes(size);
    live.vcpu->resume();
    for (size_t done = 0; done < size;) {
      const Gpa at(gpa + done);
      const size_t chunk = std::min<size_t>(size - done, kPageSize - at.page_offset());
      std::byte* host = unwrap(live.vcpu->translate(at, Access::kWrite));
      std::memcpy(host, data.data() + done, chunk);
      live.vcpu->check();
      done += chunk;
    }
    live.vcpu->park();
    remember_vcpu_pages(live, gpa, size);
    model_write(live.model, gpa, data);
    check_range(live, gpa, size);
  }

  void host_read() {
    LiveSpace& live = spaces_[below(spaces_.size())];
    const auto [gpa, size] = random_range(live.space->ram_bytes(), 3 * kPageSize);
    last_ = "host read " + live.space->name() + " at " + std::to_string(gpa);
    check_range(live, gpa, size);
  }

  void vcpu_read() {
    LiveSpace& live = spaces_[below(spaces_.size())];
    const auto [gpa, size] = vcpu_range(live, 2 * kPageSize);
    last_ = "vcpu read " + live.space->name() + " at " + std::to_string(gpa) + " size " +
            std::to_string(size);
    const std::vector<uint8_t> expected = model_read(live.model, gpa, size);
    live.vcpu->resume();
    for (size_t done = 0; done < size;) {
      const Gpa at(gpa + done);
      const size_t chunk = std::min<size_t>(size - done, kPageSize - at.page_offset());
      const Access access = chance(50) ? Access::kRead : Access::kExecute;
      const std::byte* host = unwrap(live.vcpu->translate(at, access));
      ASSERT_EQ(std::memcmp(host, expected.data() + done, chunk), 0)
          << live.space->name() << ": vCPU read differs from the model at " << at.value();
      live.vcpu->check();
      done += chunk;
    }
    live.vcpu->park();
    remember_vcpu_pages(live, gpa, size);
  }

  void populate() {
    LiveSpace& live = spaces_[below(spaces_.size())];
    const auto [gpa, size] = random_range(live.space->ram_bytes(), 6 * kPageSize);
    last_ = "populate " + live.space->name() + " at " + std::to_string(gpa) + " size " +
            std::to_string(size);
    unwrap(live.space->populate(Gpa(gpa), size));
    check_range(live, gpa, size);
  }

  void out_of_range() {
    LiveSpace& live = spaces_[below(spaces_.size())];
    const uint64_t ram = live.space->ram_bytes();
    const uint64_t gpa = ram - below(16);
    last_ = "write across the end of " + live.space->name();
    const std::vector<uint8_t> data = random_bytes(32);
    const Result<void> written = live.space->write(Gpa(gpa), std::as_bytes(std::span(data)));
    ASSERT_FALSE(written.ok());
    EXPECT_EQ(written.error().code, ErrorCode::kOutsideRam);
    check_range(live, ram - kPageSize, kPageSize);
  }

  void check_range(const LiveSpace& live, uint64_t gpa, size_t size) {
    std::vector<uint8_t> actual(size);
    unwrap(live.space->read(Gpa(gpa), std::as_writable_bytes(std::span(actual))));
    const std::vector<uint8_t> expected = model_read(live.model, gpa, size);
    if (actual != expected) {
      const auto mismatch = std::mismatch(actual.begin(), actual.end(), expected.begin());
      FAIL() << live.space->name() << ": read differs from the model at "
             << gpa + static_cast<uint64_t>(mismatch.first - actual.begin()) << " (got "
             << int{*mismatch.first} << ", expected " << int{*mismatch.second} << ")";
    }
  }

  // Every page the model knows, and a few it does not (which read as zero).
  void check_space(const LiveSpace& live) {
    for (const auto& [gfn, bytes] : live.model) {
      check_range(live, gfn * kPageSize, kPageSize);
      if (::testing::Test::HasFatalFailure()) return;
    }
    for (int probe = 0; probe < 4; ++probe) {
      const auto [gpa, size] = random_range(live.space->ram_bytes(), kPageSize);
      check_range(live, gpa, size);
    }
  }

  void check_everything() {
    for (const LiveSpace& live : spaces_) {
      check_space(live);
      if (::testing::Test::HasFatalFailure()) return;
    }
    // A snapshot is read through a space spawned from it.
    for (const LiveSnapshot& snapshot : snapshots_) {
      LiveSpace probe;
      probe.space = unwrap(snapshot.snapshot->spawn("probe"));
      probe.model = snapshot.model;
      check_space(probe);
      if (::testing::Test::HasFatalFailure()) return;
    }
    check_accounting();
  }

  void check_accounting() {
    ASSERT_TRUE(IsOk(memory_->verify_references()));
    const MemoryAccounting all = memory_->account();
    const FrameCounts& counts = all.frames;
    EXPECT_EQ(counts.free + counts.data + counts.table + counts.reclaiming, counts.capacity);
    EXPECT_EQ(all.data_exclusive + all.data_shared, counts.data)
        << "every data frame in use is reachable, once";

    uint64_t exclusive = 0;
    uint64_t root_tables = 0;
    auto check_root = [&](const SpaceAccounting& own, FrameId root, const std::string& name) {
      uint64_t leaves = 0;
      uint64_t tables = 0;
      memory_->tree().for_each_leaf(root, [&](Gfn, EptEntry) { ++leaves; });
      memory_->tree().for_each_table(root, [&](FrameId, int) { ++tables; });
      EXPECT_EQ(own.data_exclusive + own.data_shared, leaves) << name;
      EXPECT_EQ(own.tables_exclusive + own.tables_shared, tables) << name;
      EXPECT_GE(own.tables_exclusive, 1u) << name << ": its root is its own";
      exclusive += own.data_exclusive;
      ++root_tables;
    };
    for (const LiveSpace& live : spaces_) {
      check_root(live.space->account(), live.space->root(), live.space->name());
      // Every page the model holds non-zero bytes in must be mapped.
      for (const auto& [gfn, bytes] : live.model) {
        if (std::any_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; })) {
          ASSERT_TRUE(memory_->tree().walk(live.space->root(), Gfn(gfn), Access::kRead).ok())
              << live.space->name() << " page " << gfn << " is not mapped";
        }
      }
    }
    for (const LiveSnapshot& snapshot : snapshots_) {
      check_root(snapshot.snapshot->account(), snapshot.snapshot->root(),
                 snapshot.snapshot->name());
    }
    EXPECT_EQ(exclusive, all.data_exclusive) << "an exclusive frame belongs to exactly one root";
    EXPECT_GE(counts.table, root_tables);
  }

  std::mt19937_64 random_;
  std::unique_ptr<GuestMemory> memory_;
  std::vector<LiveSpace> spaces_;
  std::vector<LiveSnapshot> snapshots_;
  uint64_t next_name_ = 0;
  std::string last_;
  FaultCounters exercised_;  // summed over the spaces destroyed
};

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kOperations = 600;
#else
constexpr int kOperations = 3000;
#endif

class GuestMemoryProperty : public ::testing::TestWithParam<uint64_t> {};

TEST_P(GuestMemoryProperty, RandomOperationsMatchTheModelAndLeakNothing) {
  uint64_t seed = GetParam();
  // VMFORK_PROPERTY_SEED=<n> replays one seed (in place of every parameter).
  if (const char* forced = std::getenv("VMFORK_PROPERTY_SEED"))
    seed = std::strtoull(forced, nullptr, 0);
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (replay: VMFORK_PROPERTY_SEED=" + std::to_string(seed) + ")");
  PropertyRun run(seed);
  run.run(kOperations);
  if (HasFatalFailure()) return;
  run.tear_down_and_check_no_leak();
}

INSTANTIATE_TEST_SUITE_P(Seeds, GuestMemoryProperty,
                         ::testing::Values(uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{42},
                                           uint64_t{0x5eed}, uint64_t{20240601}));

}  // namespace
}  // namespace vmfork::testing
