// One kvm VM's guest RAM: the project's EPT (the VM's AddressSpace, which
// stays authoritative) *realized* into host memory that a KVM memslot
// covers (DESIGN section 2).
//
// A reservation starts empty: an anonymous MAP_NORESERVE range registered
// for userfaultfd missing faults, so creating or restarting one costs O(1)
// system calls whatever the RAM size. The first touch of a page realizes
// the run of its neighbours that the EPT backs with contiguous pool frames:
// one mmap of the frame-pool memfd, with the run's shared (read-only in the
// EPT) pages userfaultfd-write-protected. A guest write to such a page
// arrives here as a write-protect fault and is served by the COW protocol
// (AddressSpace::handle_fault, DESIGN section 4); a new frame is then put in
// place with mmap(MAP_FIXED), whose unmap-flush-map in the kernel (KVM's MMU
// notifier runs the INVEPT on every vCPU) realizes stages 5 to 7.
//
// Every run of contiguous pool offsets is one host mapping and the process
// has a limit (vm.max_map_count), so the number of mappings is counted
// (mirroring the kernel's merge rules) and held to a budget: a VM that runs
// out fails with a clear error, the monitor does not.
#pragma once

#include <linux/userfaultfd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "base/result.h"
#include "base/types.h"
#include "guestmm/address_space.h"
#include "guestmm/host_mapping.h"
#include "vmm/kvm/unique_fd.h"

namespace vmfork::kvm {

struct GuestRamCounters {
  uint64_t missing_faults = 0;    // first touches served
  uint64_t runs_mapped = 0;       // memfd runs realized
  uint64_t pages_realized = 0;    // pages those runs covered
  uint64_t write_faults = 0;      // write-protect faults served
  uint64_t remaps = 0;            // COW copies put in place
  uint64_t unprotects = 0;        // pages made writable in place
  uint64_t mmio_completions = 0;  // RAM accesses KVM handed over as MMIO
};

class GuestRam {
 public:
  // One reservation's host memory: the guest range and its shadow (what is
  // realized at each page). Dropping one unmaps it (keep that off a fork's
  // critical path).
  struct Reservation {
    HostMapping ram;
    HostMapping shadow;
    uint64_t mappings = 1;  // the host mappings the range consists of now
  };

  // `pool_fd` is the frame pool's memfd; `mapping_budget` the most host
  // mappings this VM's RAM may consist of.
  static Result<std::unique_ptr<GuestRam>> create(AddressSpace& space, int pool_fd,
                                                  uint64_t mapping_budget);
  ~GuestRam();
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;

  int uffd() const { return uffd_.get(); }
  uint64_t ram_bytes() const { return space_.ram_bytes(); }

  // Serves one userfaultfd message (a fault-service thread). An error ends
  // the VM; from then on every fault of it (the failed one included) gets
  // private anonymous memory, so no vCPU stays blocked in the kernel and
  // none can write a pool frame: they leave KVM_RUN on their kick.
  Result<void> serve(const uffd_msg& message);

  // Completes a load or store of RAM that KVM emulated and handed to
  // userspace as MMIO (KVM_EXIT_MMIO inside RAM). Some kernels (PVM's on
  // 6.18) do this for a write to a run realized read-only a moment ago,
  // where 6.1 fails KVM_RUN with EFAULT and the vCPU retries. The
  // instruction has retired in KVM, so the access is done here: a store
  // after the COW of its page, as a write-protect fault would be served, a
  // load from the frame the page maps. `bytes` (1 to 8, within one page)
  // is the data to store, or receives the data loaded.
  Result<void> complete_mmio(uint64_t gpa, std::span<uint8_t> bytes, bool is_write);
  // Held while a snapshot is taken: no fault of this VM is being served.
  std::mutex& serve_mutex() { return mutex_; }
  // The host address the memslot must point at now.
  uint64_t host_base_locked() const;
  // A fresh empty reservation, for restart_locked().
  Result<Reservation> make_reservation() const;
  // Starts over with `fresh` (after a snapshot cleared W in the root: every
  // realized page may be stale). The caller holds serve_mutex(), has
  // paused every vCPU and points the memslot at `fresh` right after.
  // Returns the old reservation.
  Reservation restart_locked(Reservation fresh);

  uint64_t mappings() const { return mappings_.load(std::memory_order_relaxed); }
  GuestRamCounters counters() const;

 private:
  GuestRam(AddressSpace& space, int pool_fd, uint64_t mapping_budget, UniqueFd uffd,
           Reservation reservation);

  Result<void> serve_failed_locked(uint64_t address);
  Result<void> serve_missing_locked(Gfn gfn);
  Result<void> serve_write_locked(Gfn gfn);
  // Replaces the shadow entries of [first, first + count) with `entries`
  // and updates the mapping count; fails (changing nothing) over budget.
  Result<void> set_shadow_locked(uint64_t first, uint64_t count, const uint64_t* entries);
  uint64_t boundaries_locked(uint64_t first, uint64_t last) const;
  Result<void> write_protect_locked(uint64_t first, uint64_t count, bool protect);
  uint64_t* shadow_locked() const { return current_.shadow.as<uint64_t>(); }
  uint64_t host_address_locked(uint64_t gfn) const;

  AddressSpace& space_;
  const int pool_fd_;
  const uint64_t pages_;
  const uint64_t mapping_budget_;
  UniqueFd uffd_;

  mutable std::mutex mutex_;           // serializes serving, restarting and snapshots
  Reservation current_;                // guarded by mutex_
  std::atomic<uint64_t> mappings_{1};  // written under mutex_, read by anyone
  GuestRamCounters counters_;          // guarded by mutex_
  bool failed_ = false;                // guarded by mutex_: a fault could not be served
};

}  // namespace vmfork::kvm
