#include "vmm/kvm/fault_server.h"

#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <cerrno>
#include <condition_variable>
#include <mutex>

namespace vmfork::kvm {

void FaultServer::Registration::arm() {
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& error) { on_ready(error); });
}

void FaultServer::Registration::on_ready(const boost::system::error_code& error) {
  std::unique_lock lock(mutex_);
  if (error || stopping_) {
    armed_ = false;
    stopped_.notify_all();
    return;
  }
  // Drain what is queued: the kernel blocks one thread per message.
  std::array<uffd_msg, 16> messages{};
  for (;;) {
    const ssize_t got = read(descriptor_.native_handle(), messages.data(), sizeof(messages));
    if (got < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained (or the fd went bad: the next wait says so)
    }
    const auto count = static_cast<size_t>(got) / sizeof(uffd_msg);
    for (size_t i = 0; i < count; ++i) {
      if (!handler_(messages[i])) {
        armed_ = false;
        stopped_.notify_all();
        return;
      }
    }
    if (count < messages.size()) break;
  }
  arm();
}

void FaultServer::Registration::stop() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  // cancel() completes a pending wait with operation_aborted, on a loop
  // thread; a handler running now finishes first (it holds mutex_).
  boost::asio::post(io_, [this] {
    std::lock_guard cancel_lock(mutex_);
    boost::system::error_code cancel_error;
    descriptor_.cancel(cancel_error);
    cancelled_ = true;
    stopped_.notify_all();
  });
  // Both the wait and the posted cancel refer to us: neither may outlive us.
  stopped_.wait(lock, [this] { return !armed_ && cancelled_; });
  descriptor_.release();  // the owner closes the fd
}

FaultServer::FaultServer(unsigned threads) : keep_running_(io_.get_executor()) {
  for (unsigned i = 0; i < threads; ++i)
    threads_.emplace_back([this] { io_.run(); });
}

FaultServer::~FaultServer() {
  keep_running_.reset();
  io_.stop();
  for (std::thread& thread : threads_)
    thread.join();
}

std::unique_ptr<FaultServer::Registration> FaultServer::watch(int uffd, Handler handler) {
  auto registration = std::make_unique<Registration>(io_, uffd, std::move(handler));
  registration->arm();
  return registration;
}

void FaultServer::defer(std::function<void()> work) {
  boost::asio::post(io_, std::move(work));
}

}  // namespace vmfork::kvm
