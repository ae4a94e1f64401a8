// The insides of HttpServer: the listening socket, the io thread that
// drives every connection, the workers that run the handler, and the
// registry of live connections that stop() closes. Kept out of
// http_server.h so that users of the server do not compile Asio's sockets.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "base/result.h"
#include "vmm/api/http/connection.h"
#include "vmm/api/http/http_message.h"
#include "vmm/api/http/server_options.h"
#include "vmm/api/http/socket_path.h"

namespace vmfork::api {

class ServerCore final : public ConnectionHost {
 public:
  using Handler = std::function<ApiResponse(const ApiRequest&)>;

  ServerCore(std::filesystem::path socket_path, Handler handler, ServerOptions options);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  // Binds and listens (mode 0600), then starts the threads.
  Result<void> start();
  // See HttpServer::stop().
  void stop();
  const std::filesystem::path& socket_path() const { return socket_path_; }

  // ConnectionHost.
  const ServerOptions& options() const override { return options_; }
  void dispatch(ApiRequest request, std::function<void(ApiResponse)> done) override;
  void forget(uint64_t id) override { connections_.erase(id); }

 private:
  Result<void> listen();
  void accept_next();
  void close_connections();  // the io thread
  ApiResponse run_handler(const ApiRequest& request) const;

  const std::filesystem::path socket_path_;
  const Handler handler_;
  const ServerOptions options_;
  SocketFileId socket_id_;

  boost::asio::io_context io_{1};  // one thread runs it: no strands needed
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::local::stream_protocol::acceptor acceptor_;  // the io thread (after start)
  boost::asio::steady_timer accept_retry_;                  // the io thread
  // The io thread only. Weak: a connection lives as long as an operation of
  // its own holds it; the registry is how stop() reaches them.
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;
  uint64_t next_id_ = 0;  // the io thread only

  // Set first by stop(): queued requests are answered 503 without running
  // the handler, and no connection is accepted.
  std::atomic<bool> stopping_{false};
  boost::asio::thread_pool workers_;
  std::thread io_thread_;

  std::mutex stop_mutex_;
  bool stopped_ = false;  // guarded by stop_mutex_
};

}  // namespace vmfork::api
