// Typed reading of a snapshot's JSON files. Every error names the file and
// the field's path ("/s/state.json: vcpus[1].regs.rip: expected an unsigned
// integer"), so that a user can find what to fix. Only the first error is
// kept: the accessors then return neutral values, so a parser reads on
// without testing each field and asks result() once at the end.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "vmm/boot/platform.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork {

class JsonFields {
 public:
  // A value inside the document and its path from the root ("" for the
  // root). `value` is null once an error has been recorded.
  struct Node {
    const nlohmann::json* value = nullptr;
    std::string path;
  };

  explicit JsonFields(std::string file) : file_(std::move(file)) {}

  Node root(const nlohmann::json& document) const { return {&document, ""}; }
  // A required member of an object.
  Node field(const Node& object, const char* key);
  // Whether an object has the member `key`: for members a later version
  // added, absent from older files.
  bool has(const Node& object, const char* key) const {
    return usable(object) && object.value->is_object() && object.value->contains(key);
  }
  // Whether a (present) value is null: how optional fields say "none".
  bool is_null(const Node& node) const { return usable(node) && node.value->is_null(); }
  // The number of elements of an array, and one of them.
  size_t array_size(const Node& array);
  Node element(const Node& array, size_t index);

  uint64_t unsigned_integer(const Node& node, uint64_t max = std::numeric_limits<uint64_t>::max());
  bool boolean(const Node& node);
  std::string string(const Node& node);
  // "soft" or "kvm".
  Engine engine(const Node& node);
  // "freestanding" or "pc".
  Platform platform(const Node& node);
  // "0x" and 16 hex digits (checksum_text of checksum.h).
  uint64_t checksum(const Node& node);
  // Lower-case hex digits, two a byte (hex_text).
  std::vector<uint8_t> hex_bytes(const Node& node);
  // Requires an object (a member whose content does not matter yet).
  void object(const Node& node);

  // Records "file: path: message" (or "file: message" at the root) unless an
  // error is already recorded.
  void fail(const Node& node, const std::string& message);
  bool failed() const { return error_.has_value(); }
  Result<void> result() const;
  const std::string& file() const { return file_; }

 private:
  bool usable(const Node& node) const { return !failed() && node.value != nullptr; }

  std::string file_;
  std::optional<Error> error_;
};

// Two lower-case hex digits a byte.
std::string hex_text(std::span<const uint8_t> bytes);

}  // namespace vmfork
