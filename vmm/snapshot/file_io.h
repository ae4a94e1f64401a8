// The host file operations of snapshot directories, each failure a kSystem
// error naming the path and errno's text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "base/result.h"
#include "vmm/snapshot/file_descriptor.h"

namespace vmfork {

Error system_error(const std::filesystem::path& path, const std::string& what, int error);

// The whole of a small regular file (a JSON file: at most `max_bytes`).
Result<std::string> read_text_file(const std::filesystem::path& path, uint64_t max_bytes);
// Creates `path` (it must not exist), writes `text` and flushes it to disk.
Result<void> write_new_file(const std::filesystem::path& path, const std::string& text);
// Writes all of `bytes` at `offset` (pwrite, retried on short writes).
Result<void> write_at(const FileDescriptor& fd, const std::filesystem::path& path,
                      std::span<const std::byte> bytes, uint64_t offset);
// fsync of a directory, so that the entries made in it last.
Result<void> sync_directory(const std::filesystem::path& dir);

}  // namespace vmfork
