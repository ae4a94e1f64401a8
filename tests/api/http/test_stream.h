// A ChunkStream for the tests: it records what the server does to it
// (start, stop, how many times) and lets the test push and close from any
// thread once the server has started it.
#pragma once

#include <functional>
#include <future>
#include <mutex>
#include <string>

#include "vmm/api/http/http_message.h"

namespace vmfork::testing {

class TestStream : public api::ChunkStream {
 public:
  void start(std::function<bool(std::string)> push, std::function<void()> close) override {
    {
      std::lock_guard lock(mutex_);
      push_ = std::move(push);
      close_ = std::move(close);
      ++starts_;
    }
    started_.set_value();
  }
  void stop() override {
    std::function<void()> on_stop;
    {
      std::lock_guard lock(mutex_);
      if (++stops_ > 1) return;  // the test checks stops() == 1
      on_stop = on_stop_;
    }
    if (on_stop) on_stop();
    stopped_.set_value();
  }

  bool push(std::string chunk) {
    std::function<bool(std::string)> push;
    {
      std::lock_guard lock(mutex_);
      push = push_;
    }
    return push(std::move(chunk));
  }
  void close() {
    std::function<void()> close;
    {
      std::lock_guard lock(mutex_);
      close = close_;
    }
    close();
  }

  // Runs inside stop(), on the server's io thread.
  void on_stop(std::function<void()> action) {
    std::lock_guard lock(mutex_);
    on_stop_ = std::move(action);
  }
  void wait_started() { started_future_.wait(); }
  void wait_stopped() { stopped_future_.wait(); }
  int starts() {
    std::lock_guard lock(mutex_);
    return starts_;
  }
  int stops() {
    std::lock_guard lock(mutex_);
    return stops_;
  }

 private:
  std::mutex mutex_;
  std::function<bool(std::string)> push_;  // guarded by mutex_
  std::function<void()> close_;            // guarded by mutex_
  std::function<void()> on_stop_;          // guarded by mutex_
  int starts_ = 0;                         // guarded by mutex_
  int stops_ = 0;                          // guarded by mutex_
  std::promise<void> started_;
  std::promise<void> stopped_;
  std::shared_future<void> started_future_ = started_.get_future().share();
  std::shared_future<void> stopped_future_ = stopped_.get_future().share();
};

}  // namespace vmfork::testing
