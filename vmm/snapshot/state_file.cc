#include "vmm/snapshot/state_file.h"

#include <nlohmann/json.hpp>

#include "guestmm/page_source.h"
#include "vmm/snapshot/checksum.h"
#include "vmm/snapshot/cpu_state_json.h"
#include "vmm/snapshot/json_fields.h"
#include "vmm/snapshot/platform_json.h"
#include "vmm/snapshot/snapshot_config.h"

namespace vmfork {
namespace {

using nlohmann::json;
using Node = JsonFields::Node;

// Names the hash, so that a reader of the file knows what the checksums are.
constexpr const char* kChecksumAlgorithm = "xxh3-64";

uint64_t self_checksum(json document) {
  document.erase("checksum");
  return bytes_checksum(document.dump());
}

json memory_to_json(const StateFile& file) {
  const json table = {{"file", kChunkTableFileName},
                      {"checksum", checksum_text(file.chunk_table.checksum)},
                      {"stored_chunks", file.chunk_table.stored_chunks},
                      {"stored_pages", file.chunk_table.stored_pages}};
  return {{"file", kMemoryFileName},
          {"size", file.ram_bytes},
          {"chunk_bytes", PageSource::kChunkBytes},
          {"checksum_algorithm", kChecksumAlgorithm},
          {"chunk_table", table}};
}

void memory_from_json(JsonFields& f, const Node& memory, StateFile& out) {
  const Node name = f.field(memory, "file");
  if (const std::string text = f.string(name); !f.failed() && text != kMemoryFileName) {
    f.fail(name, "\"" + text + "\" is not \"" + kMemoryFileName + "\"");
  }
  const Node size = f.field(memory, "size");
  if (const uint64_t bytes = f.unsigned_integer(size); !f.failed() && bytes != out.ram_bytes) {
    f.fail(size, std::to_string(bytes) + " is not the layout's ram_bytes (" +
                     std::to_string(out.ram_bytes) + ")");
  }
  const Node chunk_bytes = f.field(memory, "chunk_bytes");
  if (const uint64_t bytes = f.unsigned_integer(chunk_bytes);
      !f.failed() && bytes != PageSource::kChunkBytes) {
    f.fail(chunk_bytes, std::to_string(bytes) + " is not supported (this vmfork reads " +
                            std::to_string(PageSource::kChunkBytes) + ")");
  }
  const Node algorithm = f.field(memory, "checksum_algorithm");
  if (const std::string text = f.string(algorithm); !f.failed() && text != kChecksumAlgorithm) {
    f.fail(algorithm,
           "\"" + text + "\" is not supported (this vmfork reads \"" + kChecksumAlgorithm + "\")");
  }

  const Node table = f.field(memory, "chunk_table");
  const Node table_name = f.field(table, "file");
  if (const std::string text = f.string(table_name); !f.failed() && text != kChunkTableFileName) {
    f.fail(table_name, "\"" + text + "\" is not \"" + kChunkTableFileName + "\"");
  }
  out.chunk_table.checksum = f.checksum(f.field(table, "checksum"));
  out.chunk_table.stored_chunks = f.unsigned_integer(f.field(table, "stored_chunks"));
  out.chunk_table.stored_pages = f.unsigned_integer(f.field(table, "stored_pages"));
}

}  // namespace

std::string state_json_text(const StateFile& file) {
  const SnapshotState& state = file.state;
  json vcpus = json::array();
  for (const VcpuSnapshot& vcpu : state.vcpus)
    vcpus.push_back(vcpu_to_json(vcpu));
  json devices = {{"console", json::object()}};
  if (state.platform) devices["pc"] = platform_to_json(*state.platform);
  json document = {
      {"format_version", kSnapshotFormatVersion},
      {"layout",
       {{"ram_bytes", file.ram_bytes},
        {"vcpus", state.vcpus.size()},
        {"platform", to_string(state.platform_kind())}}},
      {"vcpus", std::move(vcpus)},
      {"requester", state.requester ? json(*state.requester) : json(nullptr)},
      {"devices", std::move(devices)},
      {"parent", state.parent ? json(state.parent->string()) : json(nullptr)},
      {"config_checksum", checksum_text(file.config_checksum)},
      {"parent_checksum",
       file.parent_checksum ? json(checksum_text(*file.parent_checksum)) : json(nullptr)},
      {"memory", memory_to_json(file)},
  };
  document["checksum"] = checksum_text(self_checksum(document));
  return document.dump(2) + "\n";
}

Result<StateFile> parse_state_json(const std::filesystem::path& path, const std::string& text) {
  const json document = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + ": not valid JSON");
  }
  JsonFields f(path.string());
  const Node root = f.root(document);
  f.object(root);

  // The version first: another version may checksum differently.
  const Node version = f.field(root, "format_version");
  if (const uint64_t number = f.unsigned_integer(version);
      !f.failed() && number != kSnapshotFormatVersion) {
    f.fail(root, "format_version " + std::to_string(number) +
                     " is not supported (this vmfork reads " +
                     std::to_string(kSnapshotFormatVersion) + ")");
  }
  const Node checksum = f.field(root, "checksum");
  if (const uint64_t stored = f.checksum(checksum); !f.failed()) {
    if (const uint64_t actual = self_checksum(document); actual != stored) {
      f.fail(checksum, checksum_text(stored) + " does not match the content (" +
                           checksum_text(actual) + "): the file was changed or damaged");
    }
  }
  if (Result<void> header = f.result(); !header.ok()) return header.error();

  StateFile out;
  const Node layout = f.field(root, "layout");
  out.ram_bytes = f.unsigned_integer(f.field(layout, "ram_bytes"));
  const auto vcpu_count =
      static_cast<uint32_t>(f.unsigned_integer(f.field(layout, "vcpus"), UINT32_MAX));
  // Absent from files written before PC guests had snapshots.
  const Platform platform =
      f.has(layout, "platform") ? f.platform(f.field(layout, "platform")) : Platform::kFreestanding;
  if (Result<void> fields = f.result(); !fields.ok()) return fields.error();
  if (Result<void> checked = check_config({.vcpus = vcpu_count,
                                           .ram_bytes = out.ram_bytes,
                                           .guest = {},
                                           .engine = Engine::kSoft,
                                           .platform = platform},
                                          path.string() + ": layout");
      !checked.ok()) {
    return checked.error();
  }

  const Node vcpus = f.field(root, "vcpus");
  const size_t state_count = f.array_size(vcpus);
  if (!f.failed() && state_count != vcpu_count) {
    f.fail(vcpus, std::to_string(state_count) + " vCPU states, the layout says " +
                      std::to_string(vcpu_count) + " vCPUs");
  }
  for (size_t i = 0; i < state_count && !f.failed(); ++i) {
    out.state.vcpus.push_back(vcpu_from_json(f, f.element(vcpus, i)));
  }

  const Node requester = f.field(root, "requester");
  if (!f.is_null(requester)) {
    const uint64_t index = f.unsigned_integer(requester);
    if (!f.failed() && index >= vcpu_count) {
      f.fail(requester, std::to_string(index) + " is not a vCPU (there are " +
                            std::to_string(vcpu_count) + ")");
    }
    out.state.requester = static_cast<uint32_t>(index);
  }

  const Node devices = f.field(root, "devices");
  f.object(f.field(devices, "console"));
  if (platform == Platform::kPc) {
    out.state.platform = platform_from_json(f, f.field(devices, "pc"));
  } else if (f.has(devices, "pc")) {
    f.fail(f.field(devices, "pc"), "set, but layout.platform is \"freestanding\"");
  }

  const Node parent = f.field(root, "parent");
  if (!f.is_null(parent)) {
    const std::filesystem::path dir = f.string(parent);
    if (!f.failed() && !dir.is_absolute()) {
      f.fail(parent, "\"" + dir.string() + "\" is not an absolute path");
    }
    out.state.parent = dir;
  }

  out.config_checksum = f.checksum(f.field(root, "config_checksum"));
  const Node parent_checksum = f.field(root, "parent_checksum");
  if (!f.is_null(parent_checksum)) out.parent_checksum = f.checksum(parent_checksum);
  if (!f.failed() && out.state.parent.has_value() != out.parent_checksum.has_value()) {
    f.fail(parent_checksum, out.state.parent ? "missing: a diff records its parent's checksum"
                                             : "set, but there is no parent");
  }
  memory_from_json(f, f.field(root, "memory"), out);
  if (Result<void> fields = f.result(); !fields.ok()) return fields.error();
  return out;
}

}  // namespace vmfork
