// Access kinds of a guest memory reference, and the permissions of an EPT
// entry, as one flag set (bit values equal the SDM's R/W/X entry bits).
#pragma once

#include <cstdint>

namespace vmfork {

enum class Access : uint8_t {
  kNone = 0,
  kRead = 1 << 0,
  kWrite = 1 << 1,
  kExecute = 1 << 2,
  kReadWrite = kRead | kWrite,
  kReadExecute = kRead | kExecute,
  kAll = kRead | kWrite | kExecute,
};

constexpr Access operator|(Access a, Access b) {
  return static_cast<Access>(static_cast<uint8_t>(a) | static_cast<uint8_t>(b));
}
constexpr Access operator&(Access a, Access b) {
  return static_cast<Access>(static_cast<uint8_t>(a) & static_cast<uint8_t>(b));
}
constexpr Access without(Access a, Access removed) {
  return static_cast<Access>(static_cast<uint8_t>(a) & ~static_cast<uint8_t>(removed));
}
// True when every access in `needed` is allowed by `allowed`.
constexpr bool allows(Access allowed, Access needed) {
  return (allowed & needed) == needed;
}

const char* to_string(Access access);

}  // namespace vmfork
