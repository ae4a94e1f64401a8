#include "vmm/snapshot/open_snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "vmm/snapshot/checksum.h"
#include "vmm/snapshot/file_io.h"
#include "vmm/snapshot/state_file.h"

namespace vmfork {
namespace {

namespace fs = std::filesystem;

// A generous bound on what config.json may weigh before it is read whole
// (state.json's is kMaxStateFileBytes).
constexpr uint64_t kMaxConfigBytes = uint64_t{1} << 20;

Error invalid(const std::string& message) {
  return make_error(ErrorCode::kInvalidArgument, message);
}

// One snapshot directory of the chain, checked on its own.
struct Layer {
  SnapshotConfig config;
  StateFile state;
  uint64_t state_checksum = 0;  // of state.json's bytes, which a child records
  MemoryLayer memory;
};

Result<FileDescriptor> open_memory(const fs::path& path, uint64_t ram_bytes,
                                   const fs::path& state_path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return system_error(path, "cannot open", errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return system_error(path, "cannot stat", errno);
  if (!S_ISREG(info.st_mode)) return invalid(path.string() + ": not a regular file");
  const auto size = static_cast<uint64_t>(info.st_size);
  if (size != ram_bytes) {
    return invalid(path.string() + ": " + std::to_string(size) + " bytes, " +
                   state_path.filename().string() + " says " + std::to_string(ram_bytes) +
                   (size < ram_bytes ? " (truncated?)" : " (not this snapshot's?)"));
  }
  return fd;
}

Result<Layer> open_layer(const fs::path& dir) {
  const fs::path config_path = dir / kConfigFileName;
  const fs::path state_path = dir / kStateFileName;
  const fs::path memory_path = dir / kMemoryFileName;
  Layer layer;

  // state.json first: it holds config.json's checksum, which tells a damaged
  // config.json from one that merely parses.
  Result<std::string> state_text = read_text_file(state_path, kMaxStateFileBytes);
  if (!state_text.ok()) return state_text.error();
  Result<StateFile> state = parse_state_json(state_path, *state_text);
  if (!state.ok()) return state.error();
  layer.state = std::move(*state);
  layer.state_checksum = bytes_checksum(*state_text);

  Result<std::string> config_text = read_text_file(config_path, kMaxConfigBytes);
  if (!config_text.ok()) return config_text.error();
  if (const uint64_t actual = bytes_checksum(*config_text); actual != layer.state.config_checksum) {
    return invalid(config_path.string() + ": checksum " + checksum_text(actual) + " is not the " +
                   checksum_text(layer.state.config_checksum) + " of " + state_path.string() +
                   " field config_checksum: the file was changed or "
                   "damaged");
  }
  Result<SnapshotConfig> config = parse_config_json(config_path, *config_text);
  if (!config.ok()) return config.error();
  layer.config = std::move(*config);

  if (layer.config.ram_bytes != layer.state.ram_bytes) {
    return invalid(state_path.string() +
                   ": layout.ram_bytes: " + std::to_string(layer.state.ram_bytes) + ", " +
                   config_path.string() + " says " + std::to_string(layer.config.ram_bytes));
  }
  if (layer.config.vcpus != layer.state.state.vcpus.size()) {
    return invalid(state_path.string() +
                   ": layout.vcpus: " + std::to_string(layer.state.state.vcpus.size()) + ", " +
                   config_path.string() + " says " + std::to_string(layer.config.vcpus));
  }
  const Platform state_platform = layer.state.state.platform_kind();
  if (layer.config.platform != state_platform) {
    return invalid(state_path.string() + ": layout.platform: " + to_string(state_platform) + ", " +
                   config_path.string() + " says " + to_string(layer.config.platform));
  }

  Result<FileDescriptor> memory = open_memory(memory_path, layer.state.ram_bytes, state_path);
  if (!memory.ok()) return memory.error();
  Result<ChunkTable> table =
      ChunkTable::read(dir / kChunkTableFileName, layer.state.ram_bytes / PageSource::kChunkBytes,
                       layer.state.chunk_table, state_path);
  if (!table.ok()) return table.error();
  layer.memory = {.path = memory_path, .fd = std::move(*memory), .table = std::move(*table)};
  return layer;
}

// The directory a snapshot's parent field names, checked against the chain
// so far: it exists, it is not already in the chain.
Result<fs::path> parent_of(const fs::path& child, const fs::path& parent,
                           const std::vector<fs::path>& chain) {
  const std::string field = (child / kStateFileName).string() + ": parent: ";
  std::error_code error;
  fs::path canonical = fs::canonical(parent, error);
  if (error) {
    return invalid(field + parent.string() + ": no such snapshot directory (" + error.message() +
                   ")");
  }
  if (!fs::is_directory(canonical, error)) {
    return invalid(field + parent.string() + ": not a directory");
  }
  for (const fs::path& seen : chain) {
    if (seen == canonical) {
      std::string loop;
      for (const fs::path& dir : chain)
        loop += dir.string() + " -> ";
      return invalid(field + parent.string() + " is already in the chain (a loop: " + loop +
                     canonical.string() + ")");
    }
  }
  return canonical;
}

}  // namespace

Result<OpenedSnapshot> open_snapshot(const fs::path& dir) {
  OpenedSnapshot opened;
  opened.dir = fs::absolute(dir).lexically_normal();
  if (!opened.dir.has_filename()) opened.dir = opened.dir.parent_path();
  std::error_code error;
  fs::path canonical = fs::canonical(opened.dir, error);
  if (error || !fs::is_directory(canonical, error)) {
    return invalid(opened.dir.string() + ": no such snapshot directory" +
                   (error ? " (" + error.message() + ")" : std::string()));
  }

  Result<Layer> first = open_layer(opened.dir);
  if (!first.ok()) return first.error();
  opened.config = first->config;
  opened.state = first->state.state;
  opened.chain.push_back(canonical);
  std::vector<MemoryLayer> memories;
  memories.push_back(std::move(first->memory));

  // `child`: the directory whose state.json names `parent`, as the user or
  // that file wrote it (errors name it so).
  fs::path child = opened.dir;
  std::optional<fs::path> parent = opened.state.parent;
  uint64_t expected_parent_checksum = first->state.parent_checksum.value_or(0);
  while (parent) {
    Result<fs::path> parent_dir = parent_of(child, *parent, opened.chain);
    if (!parent_dir.ok()) return parent_dir.error();
    // Opened by the path state.json gives, so that errors name what the
    // user wrote; the canonical one only tells whether the chain loops.
    Result<Layer> layer = open_layer(parent->lexically_normal());
    if (!layer.ok()) return layer.error();
    const std::string field = (child / kStateFileName).string() + ": parent: ";
    if (layer->state_checksum != expected_parent_checksum) {
      return invalid((child / kStateFileName).string() +
                     ": parent_checksum: " + checksum_text(expected_parent_checksum) + ", but " +
                     (parent->lexically_normal() / kStateFileName).string() + " hashes to " +
                     checksum_text(layer->state_checksum) +
                     ": the parent was replaced or changed since this diff was written");
    }
    if (layer->config.ram_bytes != opened.config.ram_bytes) {
      return invalid(field + parent->string() + " has ram_bytes " +
                     std::to_string(layer->config.ram_bytes) + ", this chain " +
                     std::to_string(opened.config.ram_bytes));
    }
    if (layer->config.vcpus != opened.config.vcpus) {
      return invalid(field + parent->string() + " has " + std::to_string(layer->config.vcpus) +
                     " vCPUs, this chain " + std::to_string(opened.config.vcpus));
    }
    if (layer->config.platform != opened.config.platform) {
      return invalid(field + parent->string() + " is of a " + to_string(layer->config.platform) +
                     " guest, this chain of a " + to_string(opened.config.platform) + " one");
    }
    opened.chain.push_back(*parent_dir);
    memories.push_back(std::move(layer->memory));
    child = parent->lexically_normal();
    parent = layer->state.state.parent;
    expected_parent_checksum = layer->state.parent_checksum.value_or(0);
  }
  opened.pages =
      std::make_shared<const SnapshotPageSource>(opened.config.ram_bytes, std::move(memories));
  return opened;
}

Result<void> eager_verify(const OpenedSnapshot& snapshot) {
  return snapshot.pages->verify_all();
}

}  // namespace vmfork
