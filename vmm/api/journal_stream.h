// A streamed response that follows a journal (GET /events, a VM's console
// with ?follow=true): what is kept from an offset, then each piece as it is
// appended, until the journal closes or the client leaves.
//
// It follows the journal from the moment the handler makes it, not from
// when the server starts streaming (after the response's headers): a client
// that waits for the headers and then makes a request must see the event
// of that request. Pieces that arrive before start() wait in a buffer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "vmm/api/http/http_message.h"
#include "vmm/vm/journal.h"

namespace vmfork::api {

class JournalStream final : public ChunkStream {
 public:
  JournalStream(std::shared_ptr<Journal> journal, std::optional<uint64_t> from)
      : journal_(std::move(journal)) {
    // Journal callbacks run under the journal's lock and take ours: stop()
    // must not hold ours while it unfollows.
    id_ = journal_->follow(
        from, [this](std::string_view bytes) { deliver(std::string(bytes)); },
        [this] { finish(); });
  }
  ~JournalStream() override { journal_->unfollow(id_); }

  void start(std::function<bool(std::string)> push, std::function<void()> close) override {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    push_ = std::move(push);
    close_ = std::move(close);
    if (!pending_.empty()) push_(std::exchange(pending_, {}));
    if (closed_) close_();
  }
  void stop() override {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
      push_ = nullptr;
      close_ = nullptr;
    }
    journal_->unfollow(id_);
  }

 private:
  void deliver(std::string bytes) {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    if (push_) {
      push_(std::move(bytes));
    } else {
      pending_ += bytes;
    }
  }
  void finish() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    if (close_) close_();
  }

  const std::shared_ptr<Journal> journal_;
  uint64_t id_ = 0;  // set by the constructor
  std::mutex mutex_;
  bool stopped_ = false;                   // guarded by mutex_
  bool closed_ = false;                    // guarded by mutex_
  std::string pending_;                    // guarded by mutex_: before start()
  std::function<bool(std::string)> push_;  // guarded by mutex_
  std::function<void()> close_;            // guarded by mutex_
};

}  // namespace vmfork::api
