#include "vmm/api/http/stream_channel.h"

namespace vmfork::api {

bool StreamChannel::push(std::string chunk) {
  std::lock_guard lock(mutex_);
  if (ended_ || closed_ || overflowed_) return false;
  // An empty chunk would read as the terminating one in chunked encoding.
  if (chunk.empty()) return true;
  unwritten_bytes_ += chunk.size();
  if (unwritten_bytes_ > kMaxQueuedStreamBytes) {
    overflowed_ = true;
    chunks_.clear();
    wake_once();
    return false;
  }
  chunks_.push_back(std::move(chunk));
  wake_once();
  return true;
}

void StreamChannel::close() {
  std::lock_guard lock(mutex_);
  if (ended_ || closed_) return;
  closed_ = true;
  wake_once();
}

void StreamChannel::wake_once() {
  if (wake_posted_) return;
  wake_posted_ = true;
  wake_();
}

StreamChannel::Taken StreamChannel::take() {
  std::lock_guard lock(mutex_);
  wake_posted_ = false;
  Taken taken;
  taken.chunks.swap(chunks_);
  taken.closed = closed_;
  taken.overflowed = overflowed_;
  return taken;
}

void StreamChannel::written(size_t bytes) {
  std::lock_guard lock(mutex_);
  unwritten_bytes_ -= bytes;
}

void StreamChannel::end() {
  std::lock_guard lock(mutex_);
  ended_ = true;
  chunks_.clear();
}

}  // namespace vmfork::api
