#include "vmm/snapshot/snapshot_page_source.h"

#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cerrno>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "vmm/snapshot/checksum.h"
#include "vmm/snapshot/file_io.h"

namespace vmfork {
namespace {

constexpr uint64_t kChunkPages = PageSource::kChunkPages;
static_assert(kChunkPages == 16, "a chunk's page mask is a uint16_t");

std::string chunk_name(const MemoryLayer& layer, uint64_t chunk) {
  return fmt::format("{}: chunk {} (guest-physical {:#x})", layer.path.string(), chunk,
                     chunk * PageSource::kChunkBytes);
}

// Reads kPageSize bytes into each of `pages` from consecutive pages of the
// file starting at `offset`: one preadv, more only if it comes back short.
Result<void> read_run(const MemoryLayer& layer, uint64_t chunk, std::span<iovec> pages,
                      uint64_t offset) {
  while (!pages.empty()) {
    const ssize_t got = ::preadv(layer.fd.get(), pages.data(), static_cast<int>(pages.size()),
                                 static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return system_error(chunk_name(layer, chunk), "cannot read", errno);
    }
    if (got == 0) {
      // Its size was checked at open: it was truncated since.
      return make_error(ErrorCode::kSystem, chunk_name(layer, chunk) + ": end of file at offset " +
                                                std::to_string(offset) + " (truncated?)");
    }
    auto left = static_cast<size_t>(got);
    offset += left;
    while (!pages.empty() && left >= pages.front().iov_len) {
      left -= pages.front().iov_len;
      pages = pages.subspan(1);
    }
    if (left > 0) {  // part of a page: read on from where it stopped
      pages.front().iov_base = static_cast<std::byte*>(pages.front().iov_base) + left;
      pages.front().iov_len -= left;
    }
  }
  return Ok{};
}

}  // namespace

SnapshotPageSource::SnapshotPageSource(uint64_t ram_bytes, std::vector<MemoryLayer> layers)
    : ram_bytes_(ram_bytes), chunk_count_(ram_bytes / kChunkBytes), layers_(std::move(layers)) {
  assert(!layers_.empty());
}

uint16_t SnapshotPageSource::pages_with_data(uint64_t chunk) const {
  if (chunk >= chunk_count_) return 0;
  uint16_t pages = 0;
  for (const MemoryLayer& layer : layers_)
    pages = static_cast<uint16_t>(pages | layer.table.pages(chunk));
  return pages;
}

Result<void> SnapshotPageSource::read_chunk(uint64_t chunk,
                                            std::span<std::byte* const, kChunkPages> pages) const {
  if (chunk >= chunk_count_) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{}: chunk {} is past the end of RAM ({} chunks)",
                                  layers_.front().path.string(), chunk, chunk_count_));
  }
  uint16_t wanted = pages_with_data(chunk);
  for (uint64_t i = 0; i < kChunkPages; ++i) {
    if (has_page(wanted, i) && pages[i] == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, chunk_name(layers_.front(), chunk) +
                                                         ": no buffer for page " +
                                                         std::to_string(i) + ", which has data");
    }
  }
  // Pages an older layer stores but a newer one overrides are read all the
  // same (into scratch), since a layer's checksum covers all it stores.
  std::unique_ptr<std::byte[]> scratch;
  for (const MemoryLayer& layer : layers_) {
    const std::optional<StoredChunk> stored = layer.table.find(chunk);
    if (!stored) continue;
    std::array<std::byte*, kChunkPages> to{};
    for (uint64_t i = 0; i < kChunkPages; ++i) {
      if (!has_page(stored->pages, i)) continue;
      if (has_page(wanted, i)) {
        to[i] = pages[i];
      } else {
        if (scratch == nullptr) scratch = std::make_unique<std::byte[]>(kChunkBytes);
        to[i] = scratch.get() + i * kPageSize;
      }
    }
    if (Result<void> read = read_layer_chunk(layer, *stored, to); !read.ok()) return read;
    wanted = static_cast<uint16_t>(wanted & ~stored->pages);
  }
  return Ok{};
}

Result<void> SnapshotPageSource::read_layer_chunk(
    const MemoryLayer& layer, const StoredChunk& stored,
    std::span<std::byte* const, kChunkPages> to) const {
  // One preadv per run of consecutive stored pages.
  std::array<iovec, kChunkPages> iov{};
  uint64_t i = 0;
  while (i < kChunkPages) {
    if (!has_page(stored.pages, i)) {
      ++i;
      continue;
    }
    const uint64_t first = i;
    size_t count = 0;
    for (; i < kChunkPages && has_page(stored.pages, i); ++i) {
      iov[count++] = {.iov_base = to[i], .iov_len = kPageSize};
    }
    const uint64_t offset = (stored.index * kChunkPages + first) * kPageSize;
    if (Result<void> read = read_run(layer, stored.index, std::span(iov.data(), count), offset);
        !read.ok()) {
      return read;
    }
  }
  ChunkChecksum checksum;
  for (uint64_t page = 0; page < kChunkPages; ++page) {
    if (has_page(stored.pages, page)) checksum.add_page(to[page]);
  }
  if (checksum.value() != stored.checksum) {
    return make_error(ErrorCode::kInvalidArgument,
                      chunk_name(layer, stored.index) + ": checksum mismatch (memory.chunks says " +
                          checksum_text(stored.checksum) + ", the pages hash to " +
                          checksum_text(checksum.value()) + ")");
  }
  return Ok{};
}

Result<void> SnapshotPageSource::verify_all() const {
  const auto buffer = std::make_unique<std::byte[]>(kChunkBytes);
  std::array<std::byte*, kChunkPages> to{};
  for (uint64_t i = 0; i < kChunkPages; ++i)
    to[i] = buffer.get() + i * kPageSize;
  for (const MemoryLayer& layer : layers_) {
    for (const StoredChunk& stored : layer.table.stored()) {
      if (Result<void> read = read_layer_chunk(layer, stored, to); !read.ok()) return read;
    }
  }
  return Ok{};
}

}  // namespace vmfork
