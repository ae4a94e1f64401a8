// The kvm engine's fault service (DESIGN section 2): a Boost.Asio event loop
// that waits on every VM's userfaultfd and serves each message (a missing
// page to realize, a write to a write-protected page to COW), then wakes the
// vCPU the kernel blocked. Each fd has one wait outstanding at a time, so
// one VM's messages are served in order; several VMs are served at once by
// the loop's threads. Also runs teardown work that must stay off a fork's
// critical path.
#pragma once

#include <linux/userfaultfd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/error_code.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vmfork::kvm {

class FaultServer {
 public:
  // Serves one message on a loop thread. False: stop watching this fd (the
  // handler has reported why).
  using Handler = std::function<bool(const uffd_msg&)>;

  class Registration;

  explicit FaultServer(unsigned threads);
  ~FaultServer();
  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  // Starts watching `uffd` (non-blocking) until the registration is
  // destroyed; destroying it waits until no handler of it runs any more.
  std::unique_ptr<Registration> watch(int uffd, Handler handler);
  // Runs `work` on a loop thread later (teardown off the critical path).
  void defer(std::function<void()> work);

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> keep_running_;
  std::vector<std::thread> threads_;
};

// One watched fd: one wait outstanding at a time; destroying it waits
// until no handler of it runs.
class FaultServer::Registration {
 public:
  Registration(boost::asio::io_context& io, int uffd, Handler handler)
      : io_(io), descriptor_(io, uffd), handler_(std::move(handler)) {}
  ~Registration() { stop(); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  void arm();

 private:
  void on_ready(const boost::system::error_code& error);
  void stop();

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor descriptor_;
  Handler handler_;
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool armed_ = true;       // guarded by mutex_: a wait is outstanding or a handler runs
  bool stopping_ = false;   // guarded by mutex_
  bool cancelled_ = false;  // guarded by mutex_: the cancel stop() posted has run
};

}  // namespace vmfork::kvm
