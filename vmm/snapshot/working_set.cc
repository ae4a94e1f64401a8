#include "vmm/snapshot/working_set.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "vmm/snapshot/file_io.h"

namespace vmfork {

namespace {

constexpr uint64_t kWorkingSetVersion = 1;
// 64 GiB of RAM in 64 KiB chunks, each at most 20 digits and a comma.
constexpr uint64_t kMaxWorkingSetBytes = uint64_t{32} << 20;

Error bad(const std::filesystem::path& file, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", file.string(), why));
}

}  // namespace

Result<void> write_working_set(const std::filesystem::path& dir, std::span<const uint64_t> chunks) {
  const nlohmann::json document = {{"format_version", kWorkingSetVersion},
                                   {"chunks", std::vector<uint64_t>(chunks.begin(), chunks.end())}};
  const std::filesystem::path target = dir / kWorkingSetFileName;
  const std::filesystem::path aside = dir / fmt::format(".{}.{}", kWorkingSetFileName, getpid());
  std::error_code ignored;
  std::filesystem::remove(aside, ignored);
  if (Result<void> written = write_new_file(aside, document.dump() + "\n"); !written) {
    return written;
  }
  if (::rename(aside.c_str(), target.c_str()) != 0) {
    const int error = errno;
    std::filesystem::remove(aside, ignored);
    return system_error(target, "cannot rename " + aside.string() + " to it", error);
  }
  return Ok{};
}

Result<std::optional<std::vector<uint64_t>>> read_working_set(const std::filesystem::path& dir,
                                                              uint64_t chunk_count) {
  const std::filesystem::path file = dir / kWorkingSetFileName;
  std::error_code error;
  if (!std::filesystem::exists(file, error)) return std::optional<std::vector<uint64_t>>();
  Result<std::string> text = read_text_file(file, kMaxWorkingSetBytes);
  if (!text) return text.error();
  const nlohmann::json document = nlohmann::json::parse(*text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) return bad(file, "not a JSON object");
  if (!document.contains("format_version") || document["format_version"] != kWorkingSetVersion) {
    return bad(file, fmt::format("format_version: this vmfork reads {}", kWorkingSetVersion));
  }
  if (!document.contains("chunks") || !document["chunks"].is_array()) {
    return bad(file, "chunks: expected an array");
  }
  std::vector<uint64_t> chunks;
  std::unordered_set<uint64_t> seen;
  for (const nlohmann::json& entry : document["chunks"]) {
    if (!entry.is_number_unsigned()) return bad(file, "chunks: expected unsigned integers");
    const auto chunk = entry.get<uint64_t>();
    if (chunk >= chunk_count) {
      return bad(file, fmt::format("chunks: {} is past the RAM's {} chunks", chunk, chunk_count));
    }
    if (!seen.insert(chunk).second) return bad(file, fmt::format("chunks: {} repeated", chunk));
    chunks.push_back(chunk);
  }
  return std::optional<std::vector<uint64_t>>(std::move(chunks));
}

}  // namespace vmfork
