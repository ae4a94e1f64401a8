// A CpuEnvironment for fuzzing the interpreter in which guest RAM is the only memory the
// interpreter may touch, and AddressSanitizer watches every byte of it:
//
//   - each 4 KiB page of guest RAM is a heap block of its own, so an access that runs past the
//     page its pointer came from lands in ASan's redzone, not in the next guest page;
//   - a page is poisoned until translate() hands out a pointer into it, and again at the next
//     check(), where the contract of CpuEnvironment ends that pointer's life: a pointer kept
//     across check() is reported as a use-after-poison;
//   - a page translated only for reading or executing between two checks must not change: its
//     bytes are copied at its first translation and compared when the epoch ends, so a store
//     through a read translation (which on the real engine would write a frame shared with a
//     snapshot, past the COW protocol) is caught;
//   - writes to the pages of `read_only_pages` are refused with kOutOfFrames, as the real
//     environment refuses a write when the frame pool is exhausted, so the fault paths run too.
//
// Guest RAM is [kRamBase, kRamBase + kRamBytes); everything else is kOutsideRam. One thread.
#pragma once

#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "tests/fuzz/fuzz_check.h"
#include "vmm/soft/cpu_environment.h"

namespace vmfork::fuzz {

inline constexpr uint64_t kPageBytes = 4096;
// One page below the 1 MiB where guest programs are linked: a seed puts the boot info there and
// a guest's code at 1 MiB, where it runs unrelocated.
inline constexpr uint64_t kRamBase = 0xff000;
inline constexpr size_t kRamPages = 16;
inline constexpr uint64_t kRamBytes = kRamPages * kPageBytes;
inline constexpr uint16_t kExitPort = 0xf4;  // an `out` to it stops the run, as the ABI's exit

struct EnvironmentConfig {
  uint16_t read_only_pages = 0;  // bit p: writes to RAM page p are refused
  uint8_t stop_every = 0;        // check() asks to stop every n-th call (0: never; n >= 2)
  uint8_t flush_every = 0;       // check() bumps the flush generation every n-th call (0: never)
  uint32_t port_in_value = 0;
  uint16_t failing_port = 0;  // in and out on this port fail
};

class GuardedEnvironment final : public soft::CpuEnvironment {
 public:
  GuardedEnvironment() {
    for (size_t p = 0; p < kRamPages; ++p) {
      ram_[p] = std::make_unique<Page>();
      shadow_[p] = std::make_unique<Page>();
      ASAN_POISON_MEMORY_REGION(ram_[p]->bytes.data(), kPageBytes);
    }
  }
  ~GuardedEnvironment() override {
    for (const std::unique_ptr<Page>& page : ram_)
      ASAN_UNPOISON_MEMORY_REGION(page->bytes.data(), kPageBytes);
  }
  GuardedEnvironment(const GuardedEnvironment&) = delete;
  GuardedEnvironment& operator=(const GuardedEnvironment&) = delete;

  // RAM holds `image` from kRamBase on (the rest zero); every page poisoned; counters at zero.
  void reset(const EnvironmentConfig& config, std::span<const std::byte> image) {
    config_ = config;
    image = image.first(std::min<size_t>(image.size(), kRamBytes));
    for (size_t p = 0; p < kRamPages; ++p) {
      std::byte* bytes = ram_[p]->bytes.data();
      ASAN_UNPOISON_MEMORY_REGION(bytes, kPageBytes);
      std::memset(bytes, 0, kPageBytes);
      const size_t at = p * kPageBytes;
      if (at < image.size()) {
        std::memcpy(bytes, image.data() + at, std::min<size_t>(kPageBytes, image.size() - at));
      }
      ASAN_POISON_MEMORY_REGION(bytes, kPageBytes);
      touch_[p] = Touch::kNone;
    }
    checks_ = 0;
    generation_ = 0;
  }

  // CpuEnvironment.
  Result<std::byte*> translate(uint64_t gpa, Access access) override {
    if (gpa < kRamBase || gpa - kRamBase >= kRamBytes) {
      return make_error(ErrorCode::kOutsideRam, "outside the fuzzer's guest RAM");
    }
    const size_t p = (gpa - kRamBase) / kPageBytes;
    if (access == Access::kWrite && ((config_.read_only_pages >> p) & 1) != 0) {
      return make_error(ErrorCode::kOutOfFrames, "write refused (a read-only fuzzer page)");
    }
    std::byte* bytes = ram_[p]->bytes.data();
    if (touch_[p] == Touch::kNone) {
      ASAN_UNPOISON_MEMORY_REGION(bytes, kPageBytes);
      std::memcpy(shadow_[p]->bytes.data(), bytes, kPageBytes);
      touch_[p] = Touch::kRead;
    }
    if (access == Access::kWrite) touch_[p] = Touch::kWrite;
    return bytes + (gpa % kPageBytes);
  }

  Result<soft::PortAction> port_out(uint16_t port, uint8_t size, uint32_t value) override {
    FUZZ_CHECK(size == 1 || size == 2 || size == 4, "out of %u bytes", size);
    FUZZ_CHECK(size == 4 || value >> (8 * size) == 0, "out value %#x wider than %u bytes", value,
               size);
    if (port == config_.failing_port) {
      return make_error(ErrorCode::kInvalidArgument, "port refused by the fuzzer");
    }
    return port == kExitPort ? soft::PortAction::kStop : soft::PortAction::kContinue;
  }

  Result<uint32_t> port_in(uint16_t port, uint8_t size) override {
    FUZZ_CHECK(size == 1 || size == 2 || size == 4, "in of %u bytes", size);
    if (port == config_.failing_port) {
      return make_error(ErrorCode::kInvalidArgument, "port refused by the fuzzer");
    }
    return config_.port_in_value;
  }

  bool check() override {
    end_epoch();
    ++checks_;
    if (config_.flush_every != 0 && checks_ % config_.flush_every == 0) ++generation_;
    return config_.stop_every != 0 && checks_ % config_.stop_every == 0;
  }

  // One vCPU: the section is always granted. Pointers die at the request, as
  // the interface says, so the guards check that the interpreter asks again.
  soft::Exclusive begin_exclusive() override {
    end_epoch();
    return soft::Exclusive::kGranted;
  }
  void end_exclusive() override {}

  uint64_t flush_generation() const override { return generation_; }

  // Ends the pointers' lives (as check() does): checks that the pages translated only for
  // reading kept their bytes, and poisons every page again. The harness calls it between runs.
  void end_epoch() {
    for (size_t p = 0; p < kRamPages; ++p) {
      if (touch_[p] == Touch::kNone) continue;
      std::byte* bytes = ram_[p]->bytes.data();
      FUZZ_CHECK(touch_[p] == Touch::kWrite ||
                     std::memcmp(bytes, shadow_[p]->bytes.data(), kPageBytes) == 0,
                 "guest page %#llx changed, but was translated only for reading",
                 static_cast<unsigned long long>(kRamBase + p * kPageBytes));
      ASAN_POISON_MEMORY_REGION(bytes, kPageBytes);
      touch_[p] = Touch::kNone;
    }
  }

  // True when every page is as it was at the start of the current epoch (the last check() or
  // end_epoch()).
  bool unchanged_in_epoch() const {
    for (size_t p = 0; p < kRamPages; ++p) {
      if (touch_[p] != Touch::kNone &&
          std::memcmp(ram_[p]->bytes.data(), shadow_[p]->bytes.data(), kPageBytes) != 0) {
        return false;
      }
    }
    return true;
  }

  // Copies RAM bytes from `gpa` into `out`, stopping at the end of RAM; returns how many. For
  // the harness, between runs: it leaves the poisoning as it was.
  size_t peek(uint64_t gpa, std::span<std::byte> out) const {
    size_t done = 0;
    while (done < out.size() && gpa + done >= kRamBase && gpa + done - kRamBase < kRamBytes) {
      const uint64_t offset = gpa + done - kRamBase;
      const size_t p = offset / kPageBytes;
      const size_t chunk = std::min<size_t>(out.size() - done, kPageBytes - offset % kPageBytes);
      const std::byte* bytes = ram_[p]->bytes.data();
      ASAN_UNPOISON_MEMORY_REGION(bytes, kPageBytes);
      std::memcpy(out.data() + done, bytes + offset % kPageBytes, chunk);
      if (touch_[p] == Touch::kNone) ASAN_POISON_MEMORY_REGION(bytes, kPageBytes);
      done += chunk;
    }
    return done;
  }

  // All of RAM into `out` (kRamBytes).
  void copy_ram(std::span<std::byte, kRamBytes> out) const { peek(kRamBase, out); }

 private:
  struct alignas(kPageBytes) Page {
    std::array<std::byte, kPageBytes> bytes;
  };
  enum class Touch : uint8_t { kNone, kRead, kWrite };  // this epoch's translations of a page

  EnvironmentConfig config_;
  std::array<std::unique_ptr<Page>, kRamPages> ram_;
  std::array<std::unique_ptr<Page>, kRamPages> shadow_;  // each touched page at its first touch
  std::array<Touch, kRamPages> touch_{};
  uint64_t checks_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace vmfork::fuzz
