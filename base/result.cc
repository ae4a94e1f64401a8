#include "base/result.h"

#include <cstring>

namespace vmfork {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOutOfFrames:
      return "out of frames";
    case ErrorCode::kOutsideRam:
      return "outside guest RAM";
    case ErrorCode::kNotMapped:
      return "not mapped";
    case ErrorCode::kAlreadyMapped:
      return "already mapped";
    case ErrorCode::kMisconfigured:
      return "EPT misconfiguration";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kSystem:
      return "system call failed";
    case ErrorCode::kInternal:
      return "internal error";
    case ErrorCode::kWrongState:
      return "wrong state";
    case ErrorCode::kNotFound:
      return "not found";
  }
  return "unknown error";
}

Error system_error(std::string_view what, int error) {
  std::string message(what);
  message += ": ";
  message += std::strerror(error);
  return make_error(ErrorCode::kSystem, std::move(message));
}

}  // namespace vmfork
