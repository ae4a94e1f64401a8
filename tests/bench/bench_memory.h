// Fixtures shared by the micro-benchmarks: a GuestMemory whose pool is
// host-populated up front (no host page fault, and no populator thread, in
// any timed loop) and a space with every page mapped and written.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "guestmm/address_space.h"
#include "guestmm/guest_memory.h"

namespace vmfork::microbench {

inline constexpr uint64_t kSpaceBytes = uint64_t{16} << 20;
inline constexpr uint64_t kSpacePages = kSpaceBytes / kPageSize;

// Abort with the error's message: a benchmark cannot run without it.
[[noreturn]] void die(const Error& error);
void must(Result<void> result);
template <class T>
T must(Result<T> result) {
  if (!result) die(result.error());
  return std::move(result.value());
}

std::unique_ptr<GuestMemory> make_memory(uint64_t pool_bytes);

// Every page mapped to a frame of its own that holds one written word.
std::unique_ptr<AddressSpace> make_written_space(GuestMemory& memory, uint64_t bytes);

}  // namespace vmfork::microbench
