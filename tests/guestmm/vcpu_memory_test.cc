// VcpuMemory: a vCPU's translation cache over the space's EPT, its end of
// shootdowns and reclamation. The test thread stands in for the vCPU.
#include "guestmm/vcpu_memory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kRam = 16 * kMiB;
constexpr Gpa kPage{kMiB};

void store(VcpuMemory& vcpu, Gpa gpa, uint64_t value) {
  std::byte* host = unwrap(vcpu.translate(gpa, Access::kWrite));
  std::memcpy(host, &value, sizeof value);
}

uint64_t load(VcpuMemory& vcpu, Gpa gpa) {
  const std::byte* host = unwrap(vcpu.translate(gpa, Access::kRead));
  uint64_t value = 0;
  std::memcpy(&value, host, sizeof value);
  return value;
}

TEST(VcpuMemory, FreshPageTranslatesToADemandZeroFrame) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  EXPECT_EQ(&vcpu->space(), space.get());
  const std::byte* host = unwrap(vcpu->translate(kPage, Access::kRead));
  EXPECT_TRUE(std::all_of(host, host + kPageSize, [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(space->counters().demand_zero, 1u);
  EXPECT_EQ(memory->frame_counts().data, 1u);
}

TEST(VcpuMemory, TranslationKeepsThePageOffset) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  std::byte* base = unwrap(vcpu->translate(kPage, Access::kWrite));
  std::byte* inside = unwrap(vcpu->translate(kPage + 123, Access::kWrite));
  EXPECT_EQ(inside - base, 123);
}

TEST(VcpuMemory, WriteThroughOneVcpuIsReadThroughAnotherOfTheSameSpace) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> writer = unwrap(VcpuMemory::create(*space));
  std::unique_ptr<VcpuMemory> reader = unwrap(VcpuMemory::create(*space));
  store(*writer, kPage + 16, 0xfeed'beef);
  EXPECT_EQ(load(*reader, kPage + 16), 0xfeed'beefu);
  EXPECT_EQ(read_u64(*space, kPage + 16), 0xfeed'beefu) << "and the host sees it too";
  EXPECT_EQ(memory->frame_counts().data, 1u);
}

TEST(VcpuMemory, HostWriteIsSeenThroughTheVcpu) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, kPage, 55);
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  EXPECT_EQ(load(*vcpu, kPage), 55u);
}

TEST(VcpuMemory, CachedTranslationDoesNotFaultAgain) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  store(*vcpu, kPage, 1);
  const uint64_t faults = space->counters().faults;
  for (int i = 0; i < 100; ++i)
    store(*vcpu, kPage + 8, static_cast<uint64_t>(i));
  EXPECT_EQ(space->counters().faults, faults);
  EXPECT_NE(vcpu->tlb().lookup(space->eptp(), kPage.gfn()), nullptr);
}

TEST(VcpuMemory, AccessOutsideRamIsOutsideRam) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  for (const Access access : {Access::kRead, Access::kWrite, Access::kExecute}) {
    const Result<std::byte*> host = vcpu->translate(Gpa(kRam), access);
    ASSERT_FALSE(host.ok());
    EXPECT_EQ(host.error().code, ErrorCode::kOutsideRam);
  }
  EXPECT_EQ(memory->frame_counts().data, 0u);
}

TEST(VcpuMemory, AfterACloneACachedWritableTranslationIsFlushed) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  store(*vcpu, kPage, 1);  // a writable translation is cached
  const std::byte* before = unwrap(vcpu->translate(kPage, Access::kWrite));

  // Cloning needs the space's vCPUs stopped at an instruction boundary.
  vcpu->park();
  std::unique_ptr<AddressSpace> clone = unwrap(space->clone("clone"));
  vcpu->resume();

  const uint64_t copies = space->counters().copies;
  store(*vcpu, kPage, 2);  // must fault and copy, not write the shared frame
  EXPECT_EQ(space->counters().copies, copies + 1);
  EXPECT_NE(unwrap(vcpu->translate(kPage, Access::kWrite)), before);
  EXPECT_EQ(read_u64(*clone, kPage), 1u) << "the clone saw the write after the clone";
  EXPECT_EQ(read_u64(*space, kPage), 2u);
  EXPECT_EQ(load(*vcpu, kPage), 2u);
}

TEST(VcpuMemory, AfterASnapshotACachedWritableTranslationIsFlushed) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  store(*vcpu, kPage, 1);
  vcpu->park();
  std::unique_ptr<MemorySnapshot> snapshot = unwrap(space->snapshot("snap"));
  vcpu->resume();
  store(*vcpu, kPage, 2);
  std::unique_ptr<AddressSpace> spawned = unwrap(snapshot->spawn("spawned"));
  EXPECT_EQ(read_u64(*spawned, kPage), 1u);
  EXPECT_EQ(read_u64(*space, kPage), 2u);
}

TEST(VcpuMemory, CloneKeepsItsDataWhenTheSourceWritesThroughAVcpuOfItsOwn) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, kPage, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(space->clone("clone"));
  std::unique_ptr<VcpuMemory> source_vcpu = unwrap(VcpuMemory::create(*space));
  std::unique_ptr<VcpuMemory> clone_vcpu = unwrap(VcpuMemory::create(*clone));
  EXPECT_EQ(load(*clone_vcpu, kPage), 1u);  // cached, read-only
  store(*source_vcpu, kPage, 2);
  store(*clone_vcpu, kPage + 8, 3);
  EXPECT_EQ(load(*source_vcpu, kPage), 2u);
  EXPECT_EQ(load(*clone_vcpu, kPage), 1u);
  EXPECT_EQ(load(*clone_vcpu, kPage + 8), 3u);
  EXPECT_EQ(load(*source_vcpu, kPage + 8), 0u);
}

TEST(VcpuMemory, ParkedVcpuDoesNotHoldUpAShootdownAndFlushesOnResume) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  write_u64(*space, kPage, 1);
  std::unique_ptr<AddressSpace> clone = unwrap(space->clone("clone"));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  EXPECT_EQ(load(*vcpu, kPage), 1u);  // caches the shared frame
  ASSERT_NE(vcpu->tlb().lookup(space->eptp(), kPage.gfn()), nullptr);

  vcpu->park();
  // The host's write copies the page and shoots down the space's vCPUs; a
  // parked one is acknowledged on its behalf, so this returns.
  write_u64(*space, kPage, 2);
  EXPECT_EQ(space->counters().copies, 1u);
  const uint64_t serviced = vcpu->shootdown().serviced();
  const uint64_t flushes = vcpu->tlb().flushes();

  vcpu->resume();
  EXPECT_EQ(vcpu->shootdown().serviced(), serviced + 1);
  EXPECT_GT(vcpu->tlb().flushes(), flushes);
  EXPECT_EQ(vcpu->tlb().lookup(space->eptp(), kPage.gfn()), nullptr);
  EXPECT_EQ(load(*vcpu, kPage), 2u) << "read through a stale translation";
  EXPECT_EQ(read_u64(*clone, kPage), 1u);
}

TEST(VcpuMemory, CheckServicesAPendingShootdown) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  EXPECT_EQ(load(*vcpu, kPage), 0u);
  // An initiator posts a request without waiting, as another vCPU would.
  const uint64_t ticket = vcpu->shootdown().request(space->eptp());
  EXPECT_TRUE(vcpu->shootdown().pending());
  EXPECT_FALSE(vcpu->shootdown().acknowledged(ticket));
  vcpu->check();
  EXPECT_FALSE(vcpu->shootdown().pending());
  EXPECT_TRUE(vcpu->shootdown().acknowledged(ticket));
  EXPECT_EQ(vcpu->tlb().lookup(space->eptp(), kPage.gfn()), nullptr);
}

TEST(VcpuMemory, ParkedVcpuDoesNotHoldUpReclamation) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  {
    std::unique_ptr<AddressSpace> other = unwrap(memory->create_space("other", kRam));
    write_u64(*other, kPage, 1);
  }
  ASSERT_GT(memory->reclaimer().pending(), 0u);
  EXPECT_FALSE(reclaim_all(*memory)) << "an online vCPU that never passed a quiescent point";
  vcpu->park();
  EXPECT_TRUE(reclaim_all(*memory));
  vcpu->resume();
}

TEST(VcpuMemory, CheckIsAQuiescentPoint) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  {
    std::unique_ptr<AddressSpace> other = unwrap(memory->create_space("other", kRam));
    write_u64(*other, kPage, 1);
  }
  for (int i = 0; i < 4 && memory->reclaimer().pending() > 0; ++i) {
    vcpu->check();
    memory->reclaimer().collect();
  }
  EXPECT_EQ(memory->reclaimer().pending(), 0u);
}

TEST(VcpuMemory, DestroyedVcpuLeavesReclamation) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  std::unique_ptr<VcpuMemory> vcpu = unwrap(VcpuMemory::create(*space));
  write_u64(*space, kPage, 1);
  vcpu.reset();
  space.reset();
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_EQ(memory->frame_counts().free, memory->frame_counts().capacity);
}

TEST(VcpuMemory, SpaceAcceptsNewVcpusAfterAFullSetLeft) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", kRam));
  {
    std::vector<std::unique_ptr<VcpuMemory>> vcpus;
    for (size_t i = 0; i < ShootdownDomain::kMaxTargets; ++i) {
      vcpus.push_back(unwrap(VcpuMemory::create(*space)));
    }
    const Result<std::unique_ptr<VcpuMemory>> one_too_many = VcpuMemory::create(*space);
    ASSERT_FALSE(one_too_many.ok());
    EXPECT_EQ(one_too_many.error().code, ErrorCode::kInvalidArgument);
  }
  // Every vCPU left: the space is empty again.
  const Result<std::unique_ptr<VcpuMemory>> again = VcpuMemory::create(*space);
  EXPECT_TRUE(IsOk(again)) << "after all " << ShootdownDomain::kMaxTargets << " vCPUs left";
}

TEST(VcpuMemory, VcpusOfManySpacesShareTheReclaimer) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::vector<std::unique_ptr<AddressSpace>> spaces;
  std::vector<std::unique_ptr<VcpuMemory>> vcpus;
  for (int i = 0; i < 8; ++i) {
    spaces.push_back(unwrap(memory->create_space("vm", kRam)));
    vcpus.push_back(unwrap(VcpuMemory::create(*spaces.back())));
    store(*vcpus.back(), kPage, static_cast<uint64_t>(i));
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(load(*vcpus[static_cast<size_t>(i)], kPage), static_cast<uint64_t>(i));
  }
  vcpus.clear();
  spaces.clear();
  ASSERT_TRUE(reclaim_all(*memory));
  EXPECT_EQ(memory->frame_counts().free, memory->frame_counts().capacity);
}

}  // namespace
}  // namespace vmfork::testing
