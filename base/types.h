// Strong address and frame types. Each kind of number has its own type, with
// explicit construction and only the arithmetic that means something.
#pragma once

#include <compare>
#include <cstdint>

namespace vmfork {

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
inline constexpr uint64_t kPageOffsetMask = kPageSize - 1;

class Gfn;

// Guest-physical address.
class Gpa {
 public:
  constexpr Gpa() = default;
  constexpr explicit Gpa(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  constexpr Gfn gfn() const;
  constexpr uint64_t page_offset() const { return value_ & kPageOffsetMask; }
  constexpr Gpa operator+(uint64_t bytes) const { return Gpa(value_ + bytes); }
  friend constexpr auto operator<=>(Gpa, Gpa) = default;

 private:
  uint64_t value_ = 0;
};

// Guest frame number: a guest-physical address shifted right by kPageShift.
class Gfn {
 public:
  constexpr Gfn() = default;
  constexpr explicit Gfn(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  constexpr Gpa gpa() const { return Gpa(value_ << kPageShift); }
  constexpr Gfn operator+(uint64_t pages) const { return Gfn(value_ + pages); }
  friend constexpr auto operator<=>(Gfn, Gfn) = default;

 private:
  uint64_t value_ = 0;
};

constexpr Gfn Gpa::gfn() const {
  return Gfn(value_ >> kPageShift);
}

// A 4 KiB frame of the frame pool (data page or EPT table). Its index times
// kPageSize is its offset in the pool, which is the "host-physical address"
// that EPT entries carry.
class FrameId {
 public:
  constexpr FrameId() = default;
  constexpr explicit FrameId(uint64_t index) : index_(index) {}
  constexpr uint64_t index() const { return index_; }
  constexpr uint64_t pool_offset() const { return index_ << kPageShift; }
  static constexpr FrameId from_pool_offset(uint64_t offset) {
    return FrameId(offset >> kPageShift);
  }
  friend constexpr auto operator<=>(FrameId, FrameId) = default;

 private:
  uint64_t index_ = 0;
};

}  // namespace vmfork
