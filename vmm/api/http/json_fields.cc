#include "vmm/api/http/json_fields.h"

#include <algorithm>
#include <string_view>

namespace vmfork::api {
namespace {

// What a value is, for "must be X, not Y".
std::string describe(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::number_integer:
      return "a negative integer";  // nlohmann stores non-negative integers as unsigned
    case nlohmann::json::value_t::number_unsigned:
      return "an unsigned integer";
    case nlohmann::json::value_t::number_float:
      return "a number with a fraction or exponent";
    default:
      return "null";
  }
}

// nlohmann's message without its prefix: "[json.exception.parse_error.101]
// parse error at line 1, column 12: syntax error ..." -> "syntax error ...".
// The byte offset is reported separately, from the exception.
std::string parse_error_text(const nlohmann::json::parse_error& error) {
  const std::string_view what = error.what();
  const size_t at = what.find("parse error");
  const size_t colon = at == std::string_view::npos ? at : what.find(": ", at);
  if (colon == std::string_view::npos) return std::string(what);
  return std::string(what.substr(colon + 2));
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

JsonFields JsonFields::parse(const ApiRequest& request, std::vector<std::string> known) {
  JsonFields fields;
  if (is_blank(request.body)) return fields;  // POST /vms/vm0/fork with no body: all defaults
  try {
    fields.body_ = nlohmann::json::parse(request.body);
  } catch (const nlohmann::json::parse_error& error) {
    fields.body_ = nlohmann::json::object();
    fields.record("bad JSON at byte " + std::to_string(error.byte) + ": " +
                  parse_error_text(error));
    return fields;
  }
  if (!fields.body_.is_object()) {
    fields.body_ = nlohmann::json::object();
    fields.record("the body must be a JSON object");
    return fields;
  }
  for (const auto& member : fields.body_.items()) {
    if (std::find(known.begin(), known.end(), member.key()) != known.end()) continue;
    std::string list;
    for (const std::string& name : known)
      list += (list.empty() ? "" : ", ") + name;
    fields.record("unknown field '" + member.key() + "' (known: " + (list.empty() ? "none" : list) +
                  ")");
    break;
  }
  return fields;
}

void JsonFields::record(std::string message) {
  if (!error_) error_ = std::move(message);
}

void JsonFields::fail(const char* name, const std::string& message) {
  record("field '" + std::string(name) + "' " + message);
}

void JsonFields::wrong_type(const char* name, const char* expected, const nlohmann::json& value) {
  fail(name, std::string("must be ") + expected + ", not " + describe(value));
}

const nlohmann::json* JsonFields::find(const char* name) {
  if (failed()) return nullptr;
  const auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return nullptr;
  return &*it;
}

const nlohmann::json* JsonFields::require(const char* name) {
  const nlohmann::json* value = find(name);
  if (value == nullptr) fail(name, "is required");
  return value;
}

const nlohmann::json* JsonFields::raw(const char* name) {
  return find(name);
}

const nlohmann::json* JsonFields::required_raw(const char* name) {
  return require(name);
}

std::optional<std::string> JsonFields::string(const char* name) {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    wrong_type(name, "a string", *value);
    return std::nullopt;
  }
  return value->get<std::string>();
}

std::optional<uint64_t> JsonFields::unsigned_integer(const char* name) {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_unsigned()) {
    wrong_type(name, "an unsigned integer", *value);
    return std::nullopt;
  }
  return value->get<uint64_t>();
}

std::optional<bool> JsonFields::boolean(const char* name) {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    wrong_type(name, "a boolean", *value);
    return std::nullopt;
  }
  return value->get<bool>();
}

std::optional<std::string> JsonFields::required_string(const char* name) {
  if (require(name) == nullptr) return std::nullopt;
  return string(name);
}

std::optional<uint64_t> JsonFields::required_unsigned_integer(const char* name) {
  if (require(name) == nullptr) return std::nullopt;
  return unsigned_integer(name);
}

std::optional<bool> JsonFields::required_boolean(const char* name) {
  if (require(name) == nullptr) return std::nullopt;
  return boolean(name);
}

std::optional<ApiResponse> JsonFields::error_response() const {
  if (!error_) return std::nullopt;
  return fault(400, *error_);
}

}  // namespace vmfork::api
