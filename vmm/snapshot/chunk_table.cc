#include "vmm/snapshot/chunk_table.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <string>

#include "vmm/snapshot/checksum.h"
#include "vmm/snapshot/file_descriptor.h"
#include "vmm/snapshot/file_io.h"

namespace vmfork {

static_assert(std::endian::native == std::endian::little,
              "the chunk table is little-endian, written and read as it lies in memory");

namespace {

Error invalid(const std::filesystem::path& path, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, path.string() + ": " + why);
}

}  // namespace

ChunkTable::ChunkTable(uint64_t chunk_count, std::span<const StoredChunk> chunks)
    : records_(chunk_count) {
  for (const StoredChunk& chunk : chunks)
    records_[chunk.index] = {.checksum = chunk.checksum, .pages = chunk.pages, .zero = {}};
}

std::optional<StoredChunk> ChunkTable::find(uint64_t chunk) const {
  const Record& record = records_[chunk];
  if (record.pages == 0) return std::nullopt;
  return StoredChunk{.index = chunk, .pages = record.pages, .checksum = record.checksum};
}

std::vector<StoredChunk> ChunkTable::stored() const {
  std::vector<StoredChunk> chunks;
  for (uint64_t i = 0; i < records_.size(); ++i) {
    if (std::optional<StoredChunk> chunk = find(i)) chunks.push_back(*chunk);
  }
  return chunks;
}

ChunkTableSummary ChunkTable::summary() const {
  ChunkTableSummary summary;
  summary.checksum = bytes_checksum(std::as_bytes(std::span(records_)));
  for (const Record& record : records_) {
    if (record.pages == 0) continue;
    ++summary.stored_chunks;
    summary.stored_pages += static_cast<uint64_t>(std::popcount(record.pages));
  }
  return summary;
}

Result<void> ChunkTable::write(const std::filesystem::path& path) const {
  const FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return system_error(path, "cannot create", errno);
  if (Result<void> written = write_at(fd, path, std::as_bytes(std::span(records_)), 0); !written) {
    return written;
  }
  if (::fdatasync(fd.get()) != 0) return system_error(path, "cannot flush", errno);
  return Ok{};
}

Result<ChunkTable> ChunkTable::read(const std::filesystem::path& path, uint64_t chunk_count,
                                    const ChunkTableSummary& summary,
                                    const std::filesystem::path& state_path) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return system_error(path, "cannot open", errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return system_error(path, "cannot stat", errno);
  const uint64_t expected = chunk_count * sizeof(Record);
  if (static_cast<uint64_t>(info.st_size) != expected) {
    return invalid(path, std::to_string(info.st_size) + " bytes, " + std::to_string(expected) +
                             " expected for " + std::to_string(chunk_count) +
                             " chunks of RAM (truncated?)");
  }
  ChunkTable table;
  table.records_.resize(chunk_count);
  auto* into = reinterpret_cast<char*>(table.records_.data());
  uint64_t done = 0;
  while (done < expected) {
    const ssize_t got = ::pread(fd.get(), into + done, expected - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return system_error(path, "cannot read", errno);
    if (got == 0) return invalid(path, "end of file at offset " + std::to_string(done));
    done += static_cast<uint64_t>(got);
  }
  const ChunkTableSummary actual = table.summary();
  const std::string field = state_path.string() + " field memory.chunk_table";
  if (actual.checksum != summary.checksum) {
    return invalid(path, "checksum " + checksum_text(actual.checksum) + " is not the " +
                             checksum_text(summary.checksum) + " of " + field +
                             ": the file was changed or damaged");
  }
  for (uint64_t i = 0; i < chunk_count; ++i) {
    const Record& record = table.records_[i];
    if (record.zero[0] != 0 || record.zero[1] != 0 || record.zero[2] != 0 ||
        (record.pages == 0 && record.checksum != 0)) {
      return invalid(path, "record " + std::to_string(i) + " is malformed");
    }
  }
  if (actual.stored_chunks != summary.stored_chunks ||
      actual.stored_pages != summary.stored_pages) {
    return invalid(path, std::to_string(actual.stored_chunks) + " chunks of " +
                             std::to_string(actual.stored_pages) + " pages, " + field + " says " +
                             std::to_string(summary.stored_chunks) + " of " +
                             std::to_string(summary.stored_pages));
  }
  return table;
}

}  // namespace vmfork
