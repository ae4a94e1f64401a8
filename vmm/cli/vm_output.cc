#include "vmm/cli/vm_output.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "vmm/cli/size_arg.h"

namespace vmfork::cli {

namespace {

using nlohmann::json;

constexpr const char* kUnknown = "?";
constexpr const char* kNone = "-";

const json* field(const json& object, const char* name) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(name);
  return found == object.end() ? nullptr : &*found;
}

std::string text(const json& object, const char* name) {
  const json* value = field(object, name);
  if (value == nullptr) return kUnknown;
  if (value->is_null()) return kNone;
  if (value->is_string()) return value->get<std::string>();
  return value->dump();
}

std::string microseconds(const json* nanoseconds) {
  if (nanoseconds == nullptr) return kUnknown;
  if (nanoseconds->is_null()) return kNone;
  if (!nanoseconds->is_number()) return kUnknown;
  return fmt::format("{:.1f} us", nanoseconds->get<double>() / 1e3);
}

std::string memory(const json& vm) {
  const json* bytes = field(vm, "mem_bytes");
  if (bytes == nullptr || !bytes->is_number_unsigned()) return kUnknown;
  return format_size(bytes->get<uint64_t>());
}

// "0", "1 (why it failed)", "(why it failed)" or "-".
std::string status(const json& vm) {
  const std::string exit_status = text(vm, "status");
  const json* error = field(vm, "error");
  if (error == nullptr || !error->is_string()) return exit_status;
  const std::string why = error->get<std::string>();
  return exit_status == kNone ? "error: " + why : fmt::format("{} (error: {})", exit_status, why);
}

const json& array_field(const json& body, const char* name) {
  static const json kEmpty = json::array();
  const json* value = field(body, name);
  return value != nullptr && value->is_array() ? *value : kEmpty;
}

}  // namespace

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t column = 0; column < row.size(); ++column)
      widths[column] = std::max(widths[column], row[column].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t column = 0; column < row.size(); ++column) {
      out += row[column];
      if (column + 1 < row.size()) out.append(widths[column] - row[column].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

std::string format_vm_table(const json& body) {
  std::vector<std::vector<std::string>> rows{
      {"ID", "STATE", "ENGINE", "VCPUS", "MEM", "PARENT", "STATUS"}};
  for (const json& vm : array_field(body, "vms")) {
    rows.push_back({text(vm, "id"), text(vm, "state"), text(vm, "engine"), text(vm, "vcpus"),
                    memory(vm), text(vm, "parent"), status(vm)});
  }
  return format_table(rows);
}

std::string format_clones(const json& body) {
  std::vector<std::vector<std::string>> rows{{"CLONE", "LATENCY"}};
  for (const json& clone : array_field(body, "clones"))
    rows.push_back({text(clone, "id"), microseconds(field(clone, "latency_ns"))});
  return format_table(rows);
}

std::string format_snapshot(const json& body) {
  const json* diff = field(body, "diff");
  const char* kind = diff == nullptr || !diff->is_boolean() ? kUnknown
                     : diff->get<bool>()                    ? "diff"
                                                            : "full";
  return fmt::format("snapshot {}: {} snapshot of {} page(s), VM paused {}, files written in {}\n",
                     text(body, "path"), kind, text(body, "pages"),
                     microseconds(field(body, "pause_ns")), microseconds(field(body, "write_ns")));
}

std::string format_event(const json& event) {
  std::string line =
      fmt::format("#{} {} {}", text(event, "seq"), text(event, "event"), text(event, "vm"));
  if (event.is_object()) {
    for (const auto& [name, value] : event.items()) {
      if (name == "seq" || name == "event" || name == "vm" || name == "time_ns") continue;
      line +=
          fmt::format(" {}={}", name, value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  return line + '\n';
}

}  // namespace vmfork::cli
