// An append-only text journal with readers at byte offsets and followers: a
// VM's console output (GET /vms/{id}/console) and the monitor's events (GET
// /events) as the control API serves them.
//
// Offsets count every byte ever appended; only the last `keep` bytes are
// kept, so a guest that prints forever costs a bounded amount of memory. A
// reader that asks for bytes no longer kept gets the oldest kept ones and
// learns where they start.
//
// Followers are called under the journal's lock, in append order, with
// each piece as it is appended: they must not block (the API server only
// queues the piece for its connection) and must not call back into the
// journal.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace vmfork {

class Journal {
 public:
  explicit Journal(size_t keep) : keep_(keep) {}
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends `bytes` and hands them to every follower. Nothing after close().
  void append(std::string_view bytes);
  // No more bytes: every follower's on_close runs (once), and later ones
  // are closed at once.
  void close();

  struct Read {
    std::string bytes;
    uint64_t from = 0;  // the offset of bytes[0]: past the asked one when that was dropped
    uint64_t next = 0;  // where the next read starts
    bool closed = false;
  };
  // At most `max` bytes from `offset` on.
  Read read(uint64_t offset, size_t max) const;

  // Calls `on_bytes` with what is kept from `from` on (none: nothing), then
  // with every piece appended from now on, and `on_close` once when the
  // journal closes (at once when it has). Returns the id unfollow() takes.
  uint64_t follow(std::optional<uint64_t> from, std::function<void(std::string_view)> on_bytes,
                  std::function<void()> on_close);
  // After it returns, neither callback of `id` runs again. Any thread but a
  // follower's own callback.
  void unfollow(uint64_t id);

 private:
  struct Follower {
    std::function<void(std::string_view)> on_bytes;
    std::function<void()> on_close;
  };

  const size_t keep_;
  mutable std::mutex mutex_;
  std::string kept_;                        // guarded by mutex_: the last keep_ bytes at most
  uint64_t kept_from_ = 0;                  // guarded by mutex_: the offset of kept_[0]
  bool closed_ = false;                     // guarded by mutex_
  uint64_t next_id_ = 0;                    // guarded by mutex_
  std::map<uint64_t, Follower> followers_;  // guarded by mutex_
};

}  // namespace vmfork
