#include "vmm/api/http/server_core.h"

#include <sys/stat.h>

#include <chrono>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace vmfork::api {
namespace asio = boost::asio;
using boost::system::error_code;

ServerCore::ServerCore(std::filesystem::path socket_path, Handler handler, ServerOptions options)
    : socket_path_(std::move(socket_path)),
      handler_(std::move(handler)),
      options_(options),
      work_(asio::make_work_guard(io_)),
      acceptor_(io_),
      accept_retry_(io_),
      workers_(options.workers) {}

ServerCore::~ServerCore() {
  stop();
}

Result<void> ServerCore::listen() {
  if (auto cleared = clear_socket_path(socket_path_); !cleared) return cleared.error();
  const std::string path = socket_path_.string();
  auto failed = [&](const char* step, const error_code& error) {
    error_code ignored;
    acceptor_.close(ignored);
    return make_error(ErrorCode::kSystem,
                      std::string("cannot ") + step + " " + path + ": " + error.message());
  };
  error_code error;
  acceptor_.open(asio::local::stream_protocol(), error);
  if (error) return failed("open a socket for", error);
  acceptor_.bind(asio::local::stream_protocol::endpoint(path), error);
  if (error) return failed("bind", error);
  // Before listen(): until then nobody can connect, so nobody connects
  // while the socket still has the umask's mode.
  if (::chmod(path.c_str(), 0600) != 0) {
    const int chmod_errno = errno;
    ::unlink(path.c_str());
    return failed("chmod 0600", error_code(chmod_errno, boost::system::system_category()));
  }
  auto id = socket_file_id(socket_path_);
  if (!id) return id.error();
  socket_id_ = *id;
  acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    ::unlink(path.c_str());
    return failed("listen on", error);
  }
  return Ok{};
}

Result<void> ServerCore::start() {
  if (options_.workers == 0) {
    return make_error(ErrorCode::kInvalidArgument, "an HTTP server needs at least one worker");
  }
  if (auto listening = listen(); !listening) return listening.error();
  accept_next();
  io_thread_ = std::thread([this] {
    try {
      io_.run();
    } catch (const std::exception& error) {
      // Only allocation can throw here; the daemon cannot serve on.
      spdlog::critical("api: the io thread failed: {}", error.what());
      throw;
    }
  });
  return Ok{};
}

void ServerCore::accept_next() {
  acceptor_.async_accept([this](error_code error, asio::local::stream_protocol::socket socket) {
    if (error == asio::error::operation_aborted || stopping_.load()) return;
    if (error) {
      // Out of descriptors (EMFILE) fails every accept at once until a
      // connection closes: wait a little rather than spin the io thread.
      spdlog::warn("api: accept on {} failed: {}", socket_path_.string(), error.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](error_code wait_error) {
        if (!wait_error && !stopping_.load()) accept_next();
      });
      return;
    }
    const uint64_t id = next_id_++;
    auto connection = std::make_shared<Connection>(std::move(socket), *this, id);
    connections_.emplace(id, connection);
    connection->start();
    accept_next();
  });
}

void ServerCore::dispatch(ApiRequest request, std::function<void(ApiResponse)> done) {
  asio::post(workers_, [this, request = std::move(request), done = std::move(done)] {
    done(run_handler(request));
  });
}

ApiResponse ServerCore::run_handler(const ApiRequest& request) const {
  if (stopping_.load()) return fault(503, "the daemon is stopping");
  try {
    return handler_(request);
  } catch (const std::exception& error) {
    spdlog::error("api: {} {} failed: {}",
                  std::string(boost::beast::http::to_string(request.method)), request.path,
                  error.what());
    return fault(500, std::string("internal error: ") + error.what());
  } catch (...) {
    spdlog::error("api: {} {} failed with an unknown exception",
                  std::string(boost::beast::http::to_string(request.method)), request.path);
    return fault(500, "internal error: an unknown exception");
  }
}

void ServerCore::close_connections() {
  error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  // close() forgets the connection: iterate over a copy.
  const auto connections = connections_;
  for (const auto& [id, weak] : connections) {
    if (auto connection = weak.lock()) connection->close();
  }
  connections_.clear();
}

void ServerCore::stop() {
  std::lock_guard lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  if (!io_thread_.joinable()) return;  // start() failed: nothing runs, nothing is bound
  stopping_.store(true);
  // 1. Stop accepting; close every connection, which ends every stream.
  asio::post(io_, [this] { close_connections(); });
  // 2. Wait for the handlers that run (queued ones answer 503 at once).
  //    Their responses go to closed connections, which drop them.
  workers_.join();
  // 3. Let the io thread finish what the closes started, then leave.
  work_.reset();
  io_thread_.join();
  remove_socket_file_if_ours(socket_path_, socket_id_);
}

}  // namespace vmfork::api
