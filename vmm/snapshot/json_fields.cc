#include "vmm/snapshot/json_fields.h"

#include <string_view>

namespace vmfork {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

}  // namespace

JsonFields::Node JsonFields::field(const Node& object, const char* key) {
  const std::string path = object.path.empty() ? key : object.path + "." + key;
  if (!usable(object)) return {nullptr, path};
  if (!object.value->is_object()) {
    fail(object, "expected an object");
    return {nullptr, path};
  }
  const auto it = object.value->find(key);
  if (it == object.value->end()) {
    fail({nullptr, path}, "missing");
    return {nullptr, path};
  }
  return {&*it, path};
}

size_t JsonFields::array_size(const Node& array) {
  if (!usable(array)) return 0;
  if (!array.value->is_array()) {
    fail(array, "expected an array");
    return 0;
  }
  return array.value->size();
}

JsonFields::Node JsonFields::element(const Node& array, size_t index) {
  const std::string path = array.path + "[" + std::to_string(index) + "]";
  if (!usable(array) || !array.value->is_array() || index >= array.value->size()) {
    return {nullptr, path};
  }
  return {&(*array.value)[index], path};
}

uint64_t JsonFields::unsigned_integer(const Node& node, uint64_t max) {
  if (!usable(node)) return 0;
  if (!node.value->is_number_unsigned()) {
    fail(node, "expected an unsigned integer");
    return 0;
  }
  const auto value = node.value->get<uint64_t>();
  if (value > max) {
    fail(node, std::to_string(value) + " is out of range (at most " + std::to_string(max) + ")");
    return 0;
  }
  return value;
}

bool JsonFields::boolean(const Node& node) {
  if (!usable(node)) return false;
  if (!node.value->is_boolean()) {
    fail(node, "expected true or false");
    return false;
  }
  return node.value->get<bool>();
}

std::string JsonFields::string(const Node& node) {
  if (!usable(node)) return {};
  if (!node.value->is_string()) {
    fail(node, "expected a string");
    return {};
  }
  return node.value->get<std::string>();
}

Engine JsonFields::engine(const Node& node) {
  const std::string name = string(node);
  if (failed()) return Engine::kSoft;
  if (name == "soft") return Engine::kSoft;
  if (name == "kvm") return Engine::kKvm;
  fail(node, "\"" + name + "\" is not an engine (expected \"soft\" or \"kvm\")");
  return Engine::kSoft;
}

std::vector<uint8_t> JsonFields::hex_bytes(const Node& node) {
  const std::string text = string(node);
  std::vector<uint8_t> bytes;
  if (failed()) return bytes;
  if (text.size() % 2 != 0) {
    fail(node, "odd number of hex digits (" + std::to_string(text.size()) + ")");
    return bytes;
  }
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    const size_t high = kHexDigits.find(text[i]);
    const size_t low = kHexDigits.find(text[i + 1]);
    if (high == std::string_view::npos || low == std::string_view::npos) {
      fail(node, "character " + std::to_string(i) + " is not a lower-case hex digit");
      return bytes;
    }
    bytes.push_back(static_cast<uint8_t>(high << 4 | low));
  }
  return bytes;
}

std::string hex_text(std::span<const uint8_t> bytes) {
  std::string text;
  text.reserve(bytes.size() * 2);
  for (const uint8_t byte : bytes) {
    text.push_back(kHexDigits[byte >> 4]);
    text.push_back(kHexDigits[byte & 0xf]);
  }
  return text;
}

Platform JsonFields::platform(const Node& node) {
  const std::string name = string(node);
  if (failed()) return Platform::kFreestanding;
  for (const Platform platform : {Platform::kFreestanding, Platform::kPc}) {
    if (name == to_string(platform)) return platform;
  }
  fail(node, "\"" + name + "\" is not a platform (expected \"freestanding\" or \"pc\")");
  return Platform::kFreestanding;
}

uint64_t JsonFields::checksum(const Node& node) {
  const std::string text = string(node);
  if (failed()) return 0;
  uint64_t value = 0;
  bool well_formed = text.size() == 18 && text.starts_with("0x");
  for (size_t i = 2; well_formed && i < text.size(); ++i) {
    const size_t digit = kHexDigits.find(text[i]);
    well_formed = digit != std::string_view::npos;
    value = value << 4 | digit;
  }
  if (!well_formed) {
    fail(node, "\"" + text + "\" is not a checksum (expected \"0x\" and 16 lower-case hex digits)");
    return 0;
  }
  return value;
}

void JsonFields::object(const Node& node) {
  if (usable(node) && !node.value->is_object()) fail(node, "expected an object");
}

void JsonFields::fail(const Node& node, const std::string& message) {
  if (failed()) return;
  const std::string where = node.path.empty() ? file_ : file_ + ": " + node.path;
  error_ = make_error(ErrorCode::kInvalidArgument, where + ": " + message);
}

Result<void> JsonFields::result() const {
  if (error_) return *error_;
  return Ok{};
}

}  // namespace vmfork
