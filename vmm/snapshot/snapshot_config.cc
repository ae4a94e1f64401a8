#include "vmm/snapshot/snapshot_config.h"

#include <nlohmann/json.hpp>

#include "vmm/snapshot/json_fields.h"

namespace vmfork {

Result<void> check_config(const SnapshotConfig& config, const std::string& what) {
  if (config.vcpus == 0 || config.vcpus > kMaxSnapshotVcpus) {
    return make_error(ErrorCode::kInvalidArgument,
                      what + ": vcpus: " + std::to_string(config.vcpus) + " is not in 1.." +
                          std::to_string(kMaxSnapshotVcpus) + " (the monitor's limit)");
  }
  // With a valid vCPU count, what the layout refuses is the RAM's size (or,
  // for a PC, a vCPU count above kMaxPcVcpus).
  const Result<GuestLayout> layout = snapshot_layout(config);
  if (!layout.ok()) {
    return make_error(layout.error().code, what + ": ram_bytes: " + layout.error().message);
  }
  return Ok{};
}

Result<GuestLayout> snapshot_layout(const SnapshotConfig& config) {
  return config.platform == Platform::kPc ? GuestLayout::create_pc(config.ram_bytes, config.vcpus)
                                          : GuestLayout::create(config.ram_bytes, config.vcpus);
}

std::string config_json_text(const SnapshotConfig& config) {
  const nlohmann::json json = {{"vcpus", config.vcpus},
                               {"ram_bytes", config.ram_bytes},
                               {"guest", config.guest},
                               {"engine", to_string(config.engine)},
                               {"platform", to_string(config.platform)}};
  return json.dump(2) + "\n";
}

Result<SnapshotConfig> parse_config_json(const std::filesystem::path& file,
                                         const std::string& text) {
  const nlohmann::json document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return make_error(ErrorCode::kInvalidArgument, file.string() + ": not valid JSON");
  }
  JsonFields f(file.string());
  const JsonFields::Node root = f.root(document);
  SnapshotConfig config;
  config.vcpus = static_cast<uint32_t>(f.unsigned_integer(f.field(root, "vcpus"), UINT32_MAX));
  config.ram_bytes = f.unsigned_integer(f.field(root, "ram_bytes"));
  config.guest = f.string(f.field(root, "guest"));
  config.engine = f.engine(f.field(root, "engine"));
  if (f.has(root, "platform")) config.platform = f.platform(f.field(root, "platform"));
  if (Result<void> fields = f.result(); !fields.ok()) return fields.error();
  if (Result<void> checked = check_config(config, file.string()); !checked.ok()) {
    return checked.error();
  }
  return config;
}

}  // namespace vmfork
