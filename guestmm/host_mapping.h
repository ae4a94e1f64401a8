// An owned host mapping (munmap on destruction). Anonymous NORESERVE
// mappings back sparse per-frame arrays; a memfd mapping backs the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/result.h"

namespace vmfork {

class HostMapping {
 public:
  HostMapping() = default;
  // Zero-filled, sparse, private memory of `bytes`.
  static Result<HostMapping> anonymous(uint64_t bytes);
  // `bytes` of `fd` from offset 0, shared.
  static Result<HostMapping> shared_file(int fd, uint64_t bytes);

  HostMapping(HostMapping&& other) noexcept
      : base_(std::exchange(other.base_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  HostMapping& operator=(HostMapping&& other) noexcept;
  HostMapping(const HostMapping&) = delete;
  HostMapping& operator=(const HostMapping&) = delete;
  ~HostMapping();

  std::byte* base() const { return base_; }
  uint64_t bytes() const { return bytes_; }
  template <class T>
  T* as() const {
    return reinterpret_cast<T*>(base_);
  }

 private:
  HostMapping(std::byte* base, uint64_t bytes) : base_(base), bytes_(bytes) {}
  std::byte* base_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace vmfork
