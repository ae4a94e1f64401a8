#include "vmm/snapshot/write_snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "guestmm/page_source.h"
#include "vmm/clock.h"
#include "vmm/snapshot/checksum.h"
#include "vmm/snapshot/file_io.h"
#include "vmm/snapshot/state_file.h"

namespace vmfork {
namespace {

namespace fs = std::filesystem;

Error invalid(const std::string& message) {
  return make_error(ErrorCode::kInvalidArgument, message);
}

// The temporary directory the snapshot is written in; removed on every path
// out unless it was renamed into place.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(fs::path path) : path_(std::move(path)) {}
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  ~ScratchDirectory() {
    if (path_.empty()) return;
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  void committed() { path_.clear(); }

 private:
  fs::path path_;
};

// Where `dir` is to be written: absolute, without a trailing separator (so
// that its parent is the directory holding it).
fs::path target_of(const fs::path& dir) {
  fs::path target = fs::absolute(dir).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  return target;
}

Result<void> check_target(const fs::path& target) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(target, error);
  if (status.type() == fs::file_type::not_found) return Ok{};
  if (error) return system_error(target, "cannot stat", error.value());
  if (status.type() != fs::file_type::directory) {
    return invalid(target.string() +
                   ": exists and is not a directory (a snapshot is written "
                   "to a new or empty directory)");
  }
  const bool empty = fs::is_empty(target, error);
  if (error) return system_error(target, "cannot list", error.value());
  if (!empty) {
    return invalid(target.string() +
                   ": directory is not empty (a snapshot is written to a new "
                   "or empty directory; nothing was changed in it)");
  }
  return Ok{};
}

// JSON strings are UTF-8 and nlohmann::json throws when it dumps one that
// is not; a path may be any bytes. Checked before anything is written.
Result<void> check_utf8(const fs::path& target, const char* field, const std::string& text) {
  try {
    static_cast<void>(nlohmann::json(text).dump());
  } catch (const nlohmann::json::type_error&) {
    return invalid("snapshot " + target.string() + ": " + field +
                   " is not valid UTF-8, which JSON requires");
  }
  return Ok{};
}

Result<void> check_state(const fs::path& target, const SnapshotConfig& config,
                         const SnapshotState& state) {
  if (Result<void> checked = check_utf8(target, "guest", config.guest); !checked.ok()) {
    return checked;
  }
  if (state.parent) {
    if (Result<void> checked = check_utf8(target, "parent", state.parent->string());
        !checked.ok()) {
      return checked;
    }
  }
  if (state.vcpus.size() != config.vcpus) {
    return invalid("snapshot " + target.string() + ": " + std::to_string(state.vcpus.size()) +
                   " vCPU states for " + std::to_string(config.vcpus) + " vCPUs");
  }
  if (state.requester && *state.requester >= config.vcpus) {
    return invalid("snapshot " + target.string() + ": requester " +
                   std::to_string(*state.requester) + " is not a vCPU (there are " +
                   std::to_string(config.vcpus) + ")");
  }
  return Ok{};
}

// Writes the walked pages into the memory file, building the chunk list.
class MemoryWriter {
 public:
  MemoryWriter(const FileDescriptor& fd, fs::path path, uint64_t ram_bytes)
      : fd_(fd), path_(std::move(path)), ram_pages_(ram_bytes / kPageSize) {}

  Result<void> add(Gfn gfn, const std::byte* page) {
    if (gfn.value() >= ram_pages_) {
      return invalid(path_.string() + ": page walk gave gfn " + std::to_string(gfn.value()) +
                     ", past the end of RAM (" + std::to_string(ram_pages_) + " pages)");
    }
    if (pages_written_ > 0 && gfn.value() <= last_gfn_) {
      return invalid(path_.string() + ": page walk gave gfn " + std::to_string(gfn.value()) +
                     " after " + std::to_string(last_gfn_) + " (gfns must increase)");
    }
    const uint64_t chunk = gfn.value() / PageSource::kChunkPages;
    if (pages_written_ == 0 || chunk != current_.index) {
      finish_chunk();
      current_ = {.index = chunk, .pages = 0, .checksum = 0};
      checksum_ = {};
    }
    if (Result<void> written = write_at(fd_, path_, std::span(page, kPageSize), gfn.gpa().value());
        !written.ok()) {
      return written;
    }
    current_.pages =
        static_cast<uint16_t>(current_.pages | 1u << (gfn.value() % PageSource::kChunkPages));
    checksum_.add_page(page);
    last_gfn_ = gfn.value();
    ++pages_written_;
    return Ok{};
  }

  // The chunk list, once the walk is over.
  std::vector<StoredChunk> finish() {
    finish_chunk();
    return std::move(chunks_);
  }
  uint64_t pages_written() const { return pages_written_; }

 private:
  void finish_chunk() {
    if (current_.pages == 0) return;
    current_.checksum = checksum_.value();
    chunks_.push_back(current_);
    current_.pages = 0;
  }

  const FileDescriptor& fd_;
  const fs::path path_;
  const uint64_t ram_pages_;
  StoredChunk current_;
  ChunkChecksum checksum_;
  std::vector<StoredChunk> chunks_;
  uint64_t last_gfn_ = 0;
  uint64_t pages_written_ = 0;
};

}  // namespace

Result<SnapshotWriteStats> write_snapshot(const fs::path& dir, const SnapshotConfig& config,
                                          const SnapshotState& state, const PageWalk& pages) {
  const uint64_t start = now_ns();
  const fs::path target = target_of(dir);
  if (Result<void> checked = check_config(config, "snapshot " + target.string()); !checked.ok()) {
    return checked.error();
  }
  // The parent is stored absolute; config_checksum and the chunk table come
  // later.
  StateFile state_file{.state = state,
                       .ram_bytes = config.ram_bytes,
                       .config_checksum = 0,
                       .parent_checksum = std::nullopt,
                       .chunk_table = {}};
  if (state_file.state.parent) {
    state_file.state.parent = fs::absolute(*state_file.state.parent).lexically_normal();
    // The parent as it is now: a restore refuses it if it changes.
    Result<std::string> parent_state =
        read_text_file(*state_file.state.parent / kStateFileName, kMaxStateFileBytes);
    if (!parent_state.ok()) return parent_state.error();
    state_file.parent_checksum = bytes_checksum(*parent_state);
  }
  if (Result<void> checked = check_state(target, config, state_file.state); !checked.ok()) {
    return checked.error();
  }
  if (Result<void> checked = check_target(target); !checked.ok()) return checked.error();

  // A sibling, so that the final rename stays within one file system. mkdtemp
  // makes it private (0700), which suits a copy of a guest's memory.
  std::string name(".");
  name += target.filename().string();
  name += ".writing-XXXXXX";
  std::string pattern = (target.parent_path() / name).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return system_error(pattern, "cannot create the temporary directory", errno);
  }
  ScratchDirectory scratch{fs::path(pattern)};
  SnapshotWriteStats stats;

  // 1. Memory: sized first, so that it is sparse wherever the walk stores
  // nothing.
  const fs::path memory_path = scratch.path() / kMemoryFileName;
  const FileDescriptor memory(
      ::open(memory_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!memory.valid()) return system_error(memory_path, "cannot create", errno);
  if (::ftruncate(memory.get(), static_cast<off_t>(config.ram_bytes)) != 0) {
    return system_error(memory_path, "cannot size to " + std::to_string(config.ram_bytes), errno);
  }
  MemoryWriter writer(memory, memory_path, config.ram_bytes);
  if (Result<void> walked =
          pages([&writer](Gfn gfn, const std::byte* page) { return writer.add(gfn, page); });
      !walked.ok()) {
    return walked.error();
  }
  const std::vector<StoredChunk> chunks = writer.finish();
  stats.pages_written = writer.pages_written();
  stats.chunks = chunks.size();
  const ChunkTable table(config.ram_bytes / PageSource::kChunkBytes, chunks);
  if (Result<void> written = table.write(scratch.path() / kChunkTableFileName); !written.ok()) {
    return written.error();
  }
  state_file.chunk_table = table.summary();
  uint64_t sync_start = now_ns();
  if (::fdatasync(memory.get()) != 0) return system_error(memory_path, "cannot flush", errno);
  stats.sync_ns += now_ns() - sync_start;

  // 2. state.json, which holds config.json's checksum, then 3. config.json.
  const std::string config_text = config_json_text(config);
  state_file.config_checksum = bytes_checksum(config_text);
  const std::string state_text = state_json_text(state_file);
  if (Result<void> written = write_new_file(scratch.path() / kStateFileName, state_text);
      !written.ok()) {
    return written.error();
  }
  if (Result<void> written = write_new_file(scratch.path() / kConfigFileName, config_text);
      !written.ok()) {
    return written.error();
  }
  stats.bytes_written = stats.pages_written * kPageSize + state_text.size() + config_text.size();

  // Into place: the entries of the scratch directory must be on disk before
  // the rename can make them visible under `dir`, and the rename itself
  // after. rename(2) replaces an empty directory; a non-empty one (filled
  // since check_target) makes it fail, and nothing at `dir` changes.
  sync_start = now_ns();
  if (Result<void> synced = sync_directory(scratch.path()); !synced.ok()) return synced.error();
  if (::rename(scratch.path().c_str(), target.c_str()) != 0) {
    return system_error(target, "cannot rename " + scratch.path().string() + " to it", errno);
  }
  scratch.committed();
  if (Result<void> synced = sync_directory(target.parent_path()); !synced.ok()) {
    return synced.error();
  }
  stats.sync_ns += now_ns() - sync_start;
  stats.write_ns = now_ns() - start;
  return stats;
}

}  // namespace vmfork
