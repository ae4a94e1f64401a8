#include "vmm/vm/journal.h"

#include <algorithm>
#include <utility>

namespace vmfork {

void Journal::append(std::string_view bytes) {
  std::lock_guard lock(mutex_);
  if (closed_ || bytes.empty()) return;
  kept_.append(bytes);
  if (kept_.size() > keep_) {
    // Drop from the front in one go, not byte by byte.
    const size_t drop = kept_.size() - keep_;
    kept_.erase(0, drop);
    kept_from_ += drop;
  }
  for (auto& [id, follower] : followers_)
    follower.on_bytes(bytes);
}

void Journal::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  closed_ = true;
  for (auto& [id, follower] : followers_)
    follower.on_close();
  followers_.clear();
}

Journal::Read Journal::read(uint64_t offset, size_t max) const {
  std::lock_guard lock(mutex_);
  Read result;
  const uint64_t end = kept_from_ + kept_.size();
  result.from = std::clamp(offset, kept_from_, end);
  const size_t count = static_cast<size_t>(std::min<uint64_t>(end - result.from, max));
  result.bytes = kept_.substr(static_cast<size_t>(result.from - kept_from_), count);
  result.next = result.from + count;
  result.closed = closed_;
  return result;
}

uint64_t Journal::follow(std::optional<uint64_t> from,
                         std::function<void(std::string_view)> on_bytes,
                         std::function<void()> on_close) {
  std::lock_guard lock(mutex_);
  const uint64_t id = next_id_++;
  if (from) {
    // Under the lock: nothing appended between what was kept and what follows.
    const uint64_t start = std::clamp(*from, kept_from_, kept_from_ + kept_.size());
    const std::string_view kept = std::string_view(kept_).substr(start - kept_from_);
    if (!kept.empty()) on_bytes(kept);
  }
  if (closed_) {
    on_close();
    return id;
  }
  followers_.emplace(id, Follower{std::move(on_bytes), std::move(on_close)});
  return id;
}

void Journal::unfollow(uint64_t id) {
  std::lock_guard lock(mutex_);
  followers_.erase(id);
}

}  // namespace vmfork
