#include "vmm/kvm/guest_ram.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "ept/walker.h"
#include "guestmm/guest_memory.h"
#include "guestmm/reclaimer.h"
#include "vmm/hypervisor/guest_word.h"

namespace vmfork::kvm {

namespace {

// A shadow entry says what the page's host address maps now:
//   0                    unrealized (the reservation's anonymous memory)
//   frame + 1            a pool frame, in bits 0..39
//   | kCopy              put in place by a COW (its own, unregistered mapping)
//   | kProtected         userfaultfd-write-protected
constexpr uint64_t kFrameMask = (uint64_t{1} << 40) - 1;
constexpr uint64_t kCopy = uint64_t{1} << 62;
constexpr uint64_t kProtected = uint64_t{1} << 63;
constexpr uint64_t kRegionPages = 512;  // 2 MiB: the longest run realized at once

uint64_t frame_plus_one(uint64_t entry) {
  return entry & kFrameMask;
}

// Whether the kernel keeps pages a and a + 1 in one mapping: both still the
// reservation's, or both the same kind of memfd mapping at consecutive
// pool offsets. Write protection is per page and does not split mappings.
bool same_mapping(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return a == 0 && b == 0;
  if ((a & kCopy) != (b & kCopy)) return false;
  return frame_plus_one(b) == frame_plus_one(a) + 1;
}

}  // namespace

Result<std::unique_ptr<GuestRam>> GuestRam::create(AddressSpace& space, int pool_fd,
                                                   uint64_t mapping_budget) {
  UniqueFd uffd(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!uffd.valid()) return system_error("userfaultfd");
  uffdio_api api{};
  api.api = UFFD_API;
  // Thread ids name the faulting vCPU when a fault cannot be served.
  api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_THREAD_ID;
  if (ioctl(uffd.get(), UFFDIO_API, &api) != 0) return system_error("UFFDIO_API");
  std::unique_ptr<GuestRam> ram(
      new GuestRam(space, pool_fd, mapping_budget, std::move(uffd), Reservation{}));
  Result<Reservation> first = ram->make_reservation();
  if (!first) return first.error();
  std::lock_guard lock(ram->mutex_);
  (void)ram->restart_locked(std::move(*first));
  return ram;
}

GuestRam::GuestRam(AddressSpace& space, int pool_fd, uint64_t mapping_budget, UniqueFd uffd,
                   Reservation reservation)
    : space_(space),
      pool_fd_(pool_fd),
      pages_(space.ram_bytes() / kPageSize),
      mapping_budget_(mapping_budget),
      uffd_(std::move(uffd)),
      current_(std::move(reservation)) {}

GuestRam::~GuestRam() = default;

uint64_t GuestRam::host_base_locked() const {
  return reinterpret_cast<uint64_t>(current_.ram.base());
}

uint64_t GuestRam::host_address_locked(uint64_t gfn) const {
  return host_base_locked() + gfn * kPageSize;
}

Result<GuestRam::Reservation> GuestRam::make_reservation() const {
  Result<HostMapping> ram = HostMapping::anonymous(space_.ram_bytes());
  if (!ram) return ram.error();
  Result<HostMapping> shadow = HostMapping::anonymous(pages_ * sizeof(uint64_t));
  if (!shadow) return shadow.error();
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(ram->base());
  reg.range.len = ram->bytes();
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
    return system_error("UFFDIO_REGISTER of the guest RAM reservation");
  }
  return Reservation{std::move(*ram), std::move(*shadow), 1};
}

GuestRam::Reservation GuestRam::restart_locked(Reservation fresh) {
  Reservation old = std::exchange(current_, std::move(fresh));
  mappings_.store(current_.mappings, std::memory_order_relaxed);
  return old;
}

GuestRamCounters GuestRam::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

Result<void> GuestRam::serve(const uffd_msg& message) {
  if (message.event != UFFD_EVENT_PAGEFAULT) return Ok{};  // none other is enabled
  const uint64_t address = message.arg.pagefault.address & ~(kPageSize - 1);
  const uint64_t flags = message.arg.pagefault.flags;
  std::lock_guard lock(mutex_);
  const uint64_t base = host_base_locked();
  Result<void> served = Ok{};
  if (failed_) return serve_failed_locked(address);
  if (address >= base && address - base < space_.ram_bytes()) {
    const Gfn gfn((address - base) / kPageSize);
    if ((flags & UFFD_PAGEFAULT_FLAG_WP) != 0) {
      served = serve_write_locked(gfn);
    } else {
      served = serve_missing_locked(gfn);
      // A write to a page just realized read-only would fault again at
      // once: serve it now.
      if (served && (flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0 &&
          (shadow_locked()[gfn.value()] & kProtected) != 0) {
        served = serve_write_locked(gfn);
      }
    }
  }
  // Else the fault came from a reservation a fork has replaced: its vCPU
  // was kicked out of KVM_RUN and retries in the current one.
  if (!served) {
    failed_ = true;
    (void)serve_failed_locked(address);
    return served;
  }
  uffdio_range wake{address, kPageSize};
  if (ioctl(uffd_.get(), UFFDIO_WAKE, &wake) != 0) return system_error("UFFDIO_WAKE");
  return Ok{};
}

Result<void> GuestRam::complete_mmio(uint64_t gpa, std::span<uint8_t> bytes, bool is_write) {
  const uint64_t offset = gpa % kPageSize;
  if (bytes.empty() || bytes.size() > 8 || offset + bytes.size() > kPageSize ||
      gpa >= space_.ram_bytes()) {
    return make_error(
        ErrorCode::kInternal,
        fmt::format("an MMIO access of {} byte(s) at {:#x} that is not RAM's", bytes.size(), gpa));
  }
  std::lock_guard lock(mutex_);
  if (failed_) return make_error(ErrorCode::kInternal, "the VM's RAM could not be served");
  const Gfn gfn(gpa / kPageSize);
  Result<void> served = serve_missing_locked(gfn);
  if (served && is_write) served = serve_write_locked(gfn);
  if (!served) {
    failed_ = true;  // as in serve(): every later fault of the VM gets memory of its own
    return served;
  }
  ++counters_.mmio_completions;
  // The page is realized, and writable for a store: one access of the
  // guest's width, as its own instruction would have made (hypervisor/guest_word.h
  // says why not memcpy).
  auto* host = reinterpret_cast<std::byte*>(host_address_locked(gfn.value()) + offset);
  const auto size = static_cast<unsigned>(bytes.size());
  if (size == 1 || size == 2 || size == 4 || size == 8) {
    uint64_t value = 0;
    if (is_write) {
      std::memcpy(&value, bytes.data(), size);
      store_guest_word(host, size, value);
    } else {
      value = load_guest_word(host, size);
      std::memcpy(bytes.data(), &value, size);
    }
  } else if (is_write) {  // an odd size: no single instruction accesses it either
    std::memcpy(host, bytes.data(), size);
  } else {
    std::memcpy(bytes.data(), host, size);
  }
  return Ok{};
}

Result<void> GuestRam::serve_failed_locked(uint64_t address) {
  // The VM is ending: let the vCPU go on, on memory of its own.
  if (mmap(reinterpret_cast<void*>(address), kPageSize, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    return system_error("mmap over a page of a failed VM");
  }
  uffdio_range wake{address, kPageSize};
  if (ioctl(uffd_.get(), UFFDIO_WAKE, &wake) != 0) return system_error("UFFDIO_WAKE");
  return Ok{};
}

Result<void> GuestRam::serve_missing_locked(Gfn gfn) {
  uint64_t* shadow = shadow_locked();
  if (shadow[gfn.value()] != 0) return Ok{};  // realized by an earlier message
  ++counters_.missing_faults;
  GuestMemory& memory = space_.memory();
  // The walks below and the mapping must see frames that stay allocated:
  // the guard holds reclamation back until the mapping is in place.
  HostWalkGuard guard(memory.reclaimer());
  auto walk = [&](uint64_t page) {
    return ept_walk(memory, space_.root(), Gfn(page), Access::kRead);
  };
  WalkResult at = walk(gfn.value());
  if (!at.ok()) {
    // Never touched: a zeroed frame of its own (demand-zero), or a restored
    // page (read-only, shared with the other clones of its restore). Faults
    // of this space are ours alone (we hold the lock), so the frame the
    // fault resolved stays what the page maps until we map it.
    Result<Resolved> resolved = space_.handle_fault(gfn.gpa(), Access::kRead, guard);
    if (!resolved) return resolved.error();
    at = {.kind = WalkResult::Kind::kTranslation,
          .frame = resolved->frame,
          .allowed = resolved->allowed,
          .qualification = 0,
          .level = 1};
  }

  // The run: unrealized neighbours in the same 2 MiB region whose frames
  // continue this one's.
  const uint64_t region = gfn.value() / kRegionPages * kRegionPages;
  const uint64_t region_end = std::min(region + kRegionPages, pages_);
  std::vector<uint64_t> entries;
  std::vector<uint64_t> before;
  auto entry_of = [](const WalkResult& result) {
    return (result.frame.index() + 1) | (allows(result.allowed, Access::kWrite) ? 0 : kProtected);
  };
  uint64_t first = gfn.value();
  for (uint64_t frame = at.frame.index(); first > region && frame > 0; --frame) {
    if (shadow[first - 1] != 0) break;
    const WalkResult previous = walk(first - 1);
    if (!previous.ok() || previous.frame.index() != frame - 1) break;
    before.push_back(entry_of(previous));
    --first;
  }
  entries.assign(before.rbegin(), before.rend());
  entries.push_back(entry_of(at));
  for (uint64_t next = gfn.value() + 1; next < region_end; ++next) {
    if (shadow[next] != 0) break;
    const WalkResult following = walk(next);
    if (!following.ok() || following.frame.index() != at.frame.index() + (next - gfn.value())) {
      break;
    }
    entries.push_back(entry_of(following));
  }
  const uint64_t count = entries.size();
  const bool any_protected =
      std::any_of(entries.begin(), entries.end(), [](uint64_t e) { return (e & kProtected) != 0; });

  if (Result<void> counted = set_shadow_locked(first, count, entries.data()); !counted) {
    return counted;
  }
  // A run with shared pages is mapped read-only until they are
  // write-protected: a vCPU of this VM touching the run meanwhile must not
  // write a shared frame (its write fails with EFAULT and is retried).
  void* at_address = reinterpret_cast<void*>(host_address_locked(first));
  const uint64_t bytes = count * kPageSize;
  const uint64_t offset = (frame_plus_one(entries[0]) - 1) * kPageSize;
  const int protection = any_protected ? PROT_READ : PROT_READ | PROT_WRITE;
  if (mmap(at_address, bytes, protection, MAP_SHARED | MAP_FIXED, pool_fd_,
           static_cast<off_t>(offset)) == MAP_FAILED) {
    return system_error(
        fmt::format("mmap of {} guest page(s) at {:#x} (the process may have "
                    "reached vm.max_map_count)",
                    count, Gfn(first).gpa().value()));
  }
  if (any_protected) {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uint64_t>(at_address);
    reg.range.len = bytes;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) return system_error("UFFDIO_REGISTER WP");
    for (uint64_t i = 0; i < count;) {
      if ((entries[i] & kProtected) == 0) {
        ++i;
        continue;
      }
      uint64_t end = i;
      while (end < count && (entries[end] & kProtected) != 0)
        ++end;
      if (Result<void> protect = write_protect_locked(first + i, end - i, true); !protect) {
        return protect;
      }
      i = end;
    }
    if (mprotect(at_address, bytes, PROT_READ | PROT_WRITE) != 0) {
      return system_error("mprotect of a realized run");
    }
  }
  ++counters_.runs_mapped;
  counters_.pages_realized += count;
  return Ok{};
}

Result<void> GuestRam::serve_write_locked(Gfn gfn) {
  uint64_t* shadow = shadow_locked();
  const uint64_t entry = shadow[gfn.value()];
  if (entry == 0) return Ok{};  // not realized: the retry faults as missing
  ++counters_.write_faults;
  GuestMemory& memory = space_.memory();
  // Held until the new frame is in place: the protocol's release of the old
  // frame (step 8) must not let it be reused while our mapping still
  // shows it.
  HostWalkGuard guard(memory.reclaimer());
  // Faults of this space are ours alone (we hold the lock): the frame the
  // COW resolved is what the page maps, writable, until we map it.
  Result<Resolved> resolved = space_.handle_fault(gfn.gpa(), Access::kWrite, guard);
  if (!resolved) return resolved.error();
  const FrameId now = resolved->frame;
  if (now.index() + 1 != frame_plus_one(entry)) {
    const uint64_t copy = (now.index() + 1) | kCopy;
    if (Result<void> counted = set_shadow_locked(gfn.value(), 1, &copy); !counted) return counted;
    if (mmap(reinterpret_cast<void*>(host_address_locked(gfn.value())), kPageSize,
             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, pool_fd_,
             static_cast<off_t>(now.pool_offset())) == MAP_FAILED) {
      return system_error(
          fmt::format("mmap of the copy of guest page {:#x} (the process may "
                      "have reached vm.max_map_count)",
                      gfn.gpa().value()));
    }
    ++counters_.remaps;
  } else if ((entry & kProtected) != 0) {
    if (Result<void> unprotect = write_protect_locked(gfn.value(), 1, false); !unprotect) {
      return unprotect;
    }
    shadow[gfn.value()] = entry & ~kProtected;
    ++counters_.unprotects;
  }
  return Ok{};
}

Result<void> GuestRam::write_protect_locked(uint64_t first, uint64_t count, bool protect) {
  uffdio_writeprotect wp{};
  wp.range.start = host_address_locked(first);
  wp.range.len = count * kPageSize;
  wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  if (ioctl(uffd_.get(), UFFDIO_WRITEPROTECT, &wp) != 0) return system_error("UFFDIO_WRITEPROTECT");
  return Ok{};
}

uint64_t GuestRam::boundaries_locked(uint64_t first, uint64_t last) const {
  // Boundaries between page i and i + 1 for i in [first, last).
  const uint64_t* shadow = shadow_locked();
  uint64_t count = 0;
  for (uint64_t i = first; i < last; ++i)
    if (!same_mapping(shadow[i], shadow[i + 1])) ++count;
  return count;
}

Result<void> GuestRam::set_shadow_locked(uint64_t first, uint64_t count, const uint64_t* entries) {
  uint64_t* shadow = shadow_locked();
  const uint64_t lo = first > 0 ? first - 1 : 0;
  const uint64_t hi = std::min(first + count, pages_ - 1);
  const uint64_t old_boundaries = boundaries_locked(lo, hi);
  std::vector<uint64_t> saved(shadow + first, shadow + first + count);
  std::copy(entries, entries + count, shadow + first);
  const uint64_t mappings = current_.mappings - old_boundaries + boundaries_locked(lo, hi);
  if (mappings > mapping_budget_) {
    std::copy(saved.begin(), saved.end(), shadow + first);
    return make_error(ErrorCode::kOutOfFrames,
                      fmt::format("host mapping budget exhausted ({} mappings; the guest's "
                                  "private pages are too scattered in the frame pool)",
                                  mapping_budget_));
  }
  current_.mappings = mappings;
  mappings_.store(mappings, std::memory_order_relaxed);
  return Ok{};
}

}  // namespace vmfork::kvm
