// The thread-safe half of a streamed response: the push and close functions
// a ChunkStream receives feed this queue from any thread; the connection
// drains it on the io thread. Once the connection ends the channel (end()),
// push returns false and nothing reaches the io thread any more: which is
// what makes a push after the server is gone safe.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace vmfork::api {

// A client that reads less than this behind the stream is dropped rather
// than letting the daemon's memory grow without bound.
inline constexpr size_t kMaxQueuedStreamBytes = 8 * 1024 * 1024;

class StreamChannel {
 public:
  // `wake` asks the io thread to drain(); called with the channel's lock
  // held, so never after end() returned.
  explicit StreamChannel(std::function<void()> wake) : wake_(std::move(wake)) {}

  // Any thread.
  bool push(std::string chunk);
  void close();

  // The io thread: what arrived since the last take.
  struct Taken {
    std::deque<std::string> chunks;
    bool closed = false;      // close() was called
    bool overflowed = false;  // the client fell kMaxQueuedStreamBytes behind
  };
  Taken take();
  // The io thread: `bytes` of pushed chunks reached the socket.
  void written(size_t bytes);
  // The io thread: the stream is over; push returns false from now on.
  void end();

 private:
  void wake_once();  // requires mutex_

  const std::function<void()> wake_;
  std::mutex mutex_;
  std::deque<std::string> chunks_;  // guarded by mutex_
  size_t unwritten_bytes_ = 0;      // guarded by mutex_: pushed, not yet on the socket
  bool wake_posted_ = false;        // guarded by mutex_: a drain is on its way
  bool closed_ = false;             // guarded by mutex_
  bool overflowed_ = false;         // guarded by mutex_
  bool ended_ = false;              // guarded by mutex_
};

}  // namespace vmfork::api
