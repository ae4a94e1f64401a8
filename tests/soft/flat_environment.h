// A CpuEnvironment over plain host buffers, for tests. Each region's pages are stored in reverse
// order, so an access that crosses a page boundary without being split reads the wrong bytes.
#pragma once

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/soft/cpu_environment.h"

namespace vmfork::soft::testing {

class FlatEnvironment : public CpuEnvironment {
 public:
  // Adds guest-physical [base, base + pages * 4 KiB); `base` is page aligned.
  void add_region(uint64_t base, size_t pages) {
    regions_.push_back({base, pages, std::vector<std::byte>(pages * 4096)});
  }

  // Copies between the guest and the host (byte by byte, through the page layout).
  void store(uint64_t gpa, const void* src, size_t n) {
    const auto* s = static_cast<const std::byte*>(src);
    for (size_t i = 0; i < n; ++i)
      *byte_at(gpa + i) = s[i];
  }
  void load(uint64_t gpa, void* dst, size_t n) {
    auto* d = static_cast<std::byte*>(dst);
    for (size_t i = 0; i < n; ++i)
      d[i] = *byte_at(gpa + i);
  }
  std::byte* byte_at(uint64_t gpa) {
    for (Region& r : regions_) {
      if (gpa >= r.base && gpa - r.base < r.pages * 4096) {
        const uint64_t page = (gpa - r.base) / 4096;
        return r.bytes.data() + (r.pages - 1 - page) * 4096 + (gpa & 0xfff);
      }
    }
    return nullptr;
  }

  Result<std::byte*> translate(uint64_t gpa, Access access) override {
    ++translations;
    if (access == Access::kWrite && gpa >= read_only_begin && gpa < read_only_end) {
      return make_error(ErrorCode::kNotMapped, "write to a read-only test page");
    }
    std::byte* p = byte_at(gpa);
    if (p == nullptr) return make_error(ErrorCode::kOutsideRam, "outside the test memory");
    return p;
  }
  Result<PortAction> port_out(uint16_t port, uint8_t size, uint32_t value) override {
    outs.push_back({port, size, value});
    if (port == 0xf4) return PortAction::kStop;
    if (port == 0xbad) return make_error(ErrorCode::kInvalidArgument, "bad port");
    return PortAction::kContinue;
  }
  Result<uint32_t> port_in(uint16_t port, uint8_t size) override {
    ins.push_back({port, size, 0});
    return port_in_value;
  }
  bool check() override {
    ++checks;
    if (stop_at_check != 0 && checks >= stop_at_check) return true;
    return false;
  }
  // One vCPU: an exclusive section is granted unless `refuse_exclusive` (tests of several
  // threads override these).
  Exclusive begin_exclusive() override {
    ++exclusive_requests;
    if (refuse_exclusive) return Exclusive::kRetry;
    ++exclusive_sections;
    return Exclusive::kGranted;
  }
  void end_exclusive() override { ++exclusive_ends; }
  uint64_t flush_generation() const override { return generation; }

  struct PortAccess {
    uint16_t port;
    uint8_t size;
    uint32_t value;
  };
  std::vector<PortAccess> outs;
  std::vector<PortAccess> ins;
  uint32_t port_in_value = 0;
  uint64_t checks = 0;
  uint64_t stop_at_check = 0;  // 0: never stop
  uint64_t generation = 0;
  uint64_t translations = 0;
  uint64_t exclusive_requests = 0;
  uint64_t exclusive_sections = 0;  // granted
  uint64_t exclusive_ends = 0;
  bool refuse_exclusive = false;
  uint64_t read_only_begin = 0;
  uint64_t read_only_end = 0;

 private:
  struct Region {
    uint64_t base;
    size_t pages;
    std::vector<std::byte> bytes;
  };
  std::vector<Region> regions_;
};

}  // namespace vmfork::soft::testing
