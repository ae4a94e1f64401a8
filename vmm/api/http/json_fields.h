// Strict reading of a JSON request body. The body must be a JSON object
// (an empty body reads as {}) whose members are all in the handler's list
// of known fields; each accessor checks its field's type. The first error
// is kept and becomes a 400 fault naming the field:
//   bad JSON at byte 12: syntax error while parsing object ...
//   the body must be a JSON object
//   unknown field 'vcpu' (known: guest, vcpus, mem, engine, paused)
//   field 'vcpus' must be an unsigned integer, not a string
//   field 'guest' is required
// Once an error is kept, every accessor returns nullopt (or nullptr), so a
// handler reads all its fields and asks error_response() once at the end:
//
//   JsonFields fields = JsonFields::parse(request, {"guest", "vcpus"});
//   auto guest = fields.required_string("guest");
//   auto vcpus = fields.unsigned_integer("vcpus");
//   if (auto error = fields.error_response()) return std::move(*error);
//
// A JSON null reads as an absent field: "engine": null asks for the default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vmm/api/http/http_message.h"

namespace vmfork::api {

class JsonFields {
 public:
  // Never fails itself: a body that is not JSON, not an object, or has an
  // unknown field records the error that error_response() returns.
  static JsonFields parse(const ApiRequest& request, std::vector<std::string> known);

  // Optional fields: nullopt when absent (or null), or after an error.
  std::optional<std::string> string(const char* name);
  std::optional<uint64_t> unsigned_integer(const char* name);
  std::optional<bool> boolean(const char* name);
  // Any type, for fields of more than one ("mem": "64M" or 67108864).
  const nlohmann::json* raw(const char* name);

  // Required fields: absence is an error too.
  std::optional<std::string> required_string(const char* name);
  std::optional<uint64_t> required_unsigned_integer(const char* name);
  std::optional<bool> required_boolean(const char* name);
  const nlohmann::json* required_raw(const char* name);

  // Records "field 'name' message" (unless an error is already kept): for
  // values the handler checks itself ("field 'mem' must be a size like 64M").
  void fail(const char* name, const std::string& message);

  bool failed() const { return error_.has_value(); }
  // The first error as a 400 fault, or nullopt if there was none.
  std::optional<ApiResponse> error_response() const;
  // The first error's message ("" if none).
  std::string error_message() const { return error_.value_or(""); }

 private:
  JsonFields() = default;
  void record(std::string message);
  // The member, or nullptr when absent, null, or after an error.
  const nlohmann::json* find(const char* name);
  const nlohmann::json* require(const char* name);
  // Records "field 'name' must be <expected>, not <what value is>".
  void wrong_type(const char* name, const char* expected, const nlohmann::json& value);

  nlohmann::json body_ = nlohmann::json::object();
  std::optional<std::string> error_;
};

}  // namespace vmfork::api
