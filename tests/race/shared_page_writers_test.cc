// Stress: vCPUs of two VMs that share every page write disjoint words of the
// same pages at once, over and over, snapshotting between rounds so every
// round starts shared again. Every write must survive, each VM must see only
// its own writes, and the reference counts must match the trees afterwards.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"
#include "guestmm/snapshot.h"
#include "guestmm/vcpu_memory.h"
#include "race_harness.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kPages = 64;
constexpr uint64_t kVcpusPerVm = 2;
constexpr Gpa kBase{0x40'0000};

uint64_t value_of(uint64_t vm, uint64_t vcpu, uint64_t round, uint64_t page) {
  return (vm << 56) | (vcpu << 48) | (round << 16) | page;
}

TEST(SharedPageWriters, EveryWriteSurvivesAndVmsStayIsolated) {
  Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = 64 << 20, .populate = Populate::kOnDemand});
  ASSERT_TRUE(memory.ok());
  Result<std::unique_ptr<AddressSpace>> origin = (*memory)->create_space("origin", 8 << 20);
  ASSERT_TRUE(origin.ok());
  ASSERT_TRUE((*origin)->populate(kBase, kPages * kPageSize).ok());

  const uint64_t rounds = 40 / kSanitizerSlowdown;
  for (uint64_t round = 1; round <= rounds; ++round) {
    std::vector<std::unique_ptr<AddressSpace>> vms;
    for (int i = 0; i < 2; ++i) {
      Result<std::unique_ptr<AddressSpace>> vm = (*origin)->clone("vm" + std::to_string(i));
      ASSERT_TRUE(vm.ok());
      vms.push_back(std::move(*vm));
    }
    std::vector<std::unique_ptr<VcpuMemory>> vcpus;
    for (auto& vm : vms) {
      for (uint64_t i = 0; i < kVcpusPerVm; ++i) {
        Result<std::unique_ptr<VcpuMemory>> vcpu = VcpuMemory::create(*vm);
        ASSERT_TRUE(vcpu.ok());
        vcpus.push_back(std::move(*vcpu));
      }
    }
    SpinBarrier start(static_cast<int>(vcpus.size()));
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < vcpus.size(); ++t) {
      threads.emplace_back([&, t] {
        VcpuMemory& vcpu = *vcpus[t];
        const uint64_t vm = t / kVcpusPerVm;
        const uint64_t slot = t % kVcpusPerVm;
        start.arrive_and_wait();
        for (uint64_t page = 0; page < kPages; ++page) {
          vcpu.check();
          guest_store(vcpu, kBase + page * kPageSize + slot * 8, value_of(vm, slot, round, page));
        }
        vcpu.park();
      });
    }
    for (std::thread& thread : threads)
      thread.join();

    for (uint64_t vm = 0; vm < vms.size(); ++vm) {
      for (uint64_t page = 0; page < kPages; ++page) {
        for (uint64_t slot = 0; slot < kVcpusPerVm; ++slot) {
          uint64_t word = 0;
          ASSERT_TRUE(vms[vm]
                          ->read(kBase + page * kPageSize + slot * 8,
                                 std::as_writable_bytes(std::span(&word, 1)))
                          .ok());
          ASSERT_EQ(word, value_of(vm, slot, round, page))
              << "vm " << vm << " page " << page << " slot " << slot << " round " << round;
        }
      }
    }
    ASSERT_TRUE((*memory)->verify_references().ok())
        << (*memory)->verify_references().error().message;
    vcpus.clear();
    vms.clear();
  }
  // The origin never changed.
  uint64_t word = 1;
  ASSERT_TRUE((*origin)->read(kBase, std::as_writable_bytes(std::span(&word, 1))).ok());
  EXPECT_EQ(word, 0u);
}

}  // namespace
}  // namespace vmfork::testing
