// Errors as values: Result<T> holds a T or an Error (code plus message).
// A small stand-in for C++23 std::expected.
#pragma once

#include <cassert>
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vmfork {

enum class ErrorCode {
  kOutOfFrames,      // the frame pool is exhausted
  kOutsideRam,       // a guest-physical address outside the VM's RAM
  kNotMapped,        // no translation where one was required
  kAlreadyMapped,    // a map over a present leaf
  kMisconfigured,    // an EPT entry the walker cannot use
  kInvalidArgument,  // a caller error
  kSystem,           // a failed host system call
  kInternal,         // an invariant of vmfork itself did not hold
  kWrongState,       // the object's state does not allow it now (pause a paused VM)
  kNotFound,         // no object of that name (a VM id)
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<T>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(state_));
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(state_);
  }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const {
    assert(!ok());
    return std::get<Error>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

struct Ok {};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Ok) {}  // NOLINT(google-explicit-constructor)
  Result(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_{ErrorCode::kInvalidArgument, {}};
  bool ok_ = true;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

// A failed host system call: kSystem, "<what>: <strerror(error)>".
Error system_error(std::string_view what, int error = errno);

}  // namespace vmfork
