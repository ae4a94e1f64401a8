#include "vmm/api/client/http_client.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/un.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <limits>
#include <utility>

#include "vmm/api/client/fault.h"

namespace vmfork::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using UnixSocket = asio::local::stream_protocol::socket;

namespace {

// A whole response is held in memory; console output is the largest the API
// sends. Past this the daemon is misbehaving, and the client says so rather
// than growing without bound.
constexpr uint64_t kMaxResponseBody = uint64_t{1} << 30;
// An error response read by stream(): a fault body is a line of JSON.
constexpr size_t kMaxFaultBody = 64 * 1024;
constexpr size_t kStreamChunk = 16 * 1024;

http::verb to_verb(Method method) {
  switch (method) {
    case Method::kGet:
      return http::verb::get;
    case Method::kPost:
      return http::verb::post;
    case Method::kPut:
      return http::verb::put;
    case Method::kPatch:
      return http::verb::patch;
    case Method::kDelete:
      return http::verb::delete_;
  }
  return http::verb::unknown;
}

Error connect_error(const std::string& path, const boost::system::error_code& ec) {
  const std::string hint = fmt::format("is `vmfork serve --api-sock {}` running?", path);
  if (ec == boost::system::errc::no_such_file_or_directory) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("cannot connect to {}: no such file ({})", path, hint));
  }
  if (ec == boost::system::errc::connection_refused) {
    // The file exists but nothing accepts on it: a daemon that died
    // without removing its socket, or a file that is not a socket.
    return make_error(ErrorCode::kSystem,
                      fmt::format("cannot connect to {}: connection refused ({})", path, hint));
  }
  if (ec == boost::system::errc::permission_denied) {
    return make_error(ErrorCode::kSystem,
                      fmt::format("cannot connect to {}: permission denied (the daemon's socket "
                                  "is mode 0600: connect as the user who started it)",
                                  path));
  }
  return make_error(ErrorCode::kSystem,
                    fmt::format("cannot connect to {}: {}", path, ec.message()));
}

// The daemon went away or broke the protocol while a response was due.
Error read_error(const std::string& path, Method method, std::string_view target,
                 const boost::system::error_code& ec, bool got_some) {
  const bool closed = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                      ec == asio::error::eof || ec == asio::error::connection_reset ||
                      ec == asio::error::broken_pipe;
  if (closed) {
    return make_error(
        ErrorCode::kSystem,
        fmt::format("the daemon at {} closed the connection {} {} {}", path,
                    got_some ? "in the middle of its response to" : "before answering",
                    to_string(method), target));
  }
  return make_error(ErrorCode::kSystem,
                    fmt::format("reading the daemon's response to {} {} from {}: {}",
                                to_string(method), target, path, ec.message()));
}

}  // namespace

struct HttpClient::Connection {
  asio::io_context io;
  UnixSocket socket{io};
  // Bytes read past the end of one response belong to the next; the buffer
  // lives as long as the connection so that none are lost.
  beast::flat_buffer buffer;
  bool used = false;  // a request went over it: it may have gone stale since

  // An idle keep-alive connection has nothing to read; when it has (EOF:
  // the daemon closed it, or bytes nobody asked for) it cannot carry a
  // request. Checking before sending, rather than retrying after, keeps a
  // POST from ever being sent twice.
  bool idle_and_open() {
    pollfd polled{.fd = socket.native_handle(), .events = POLLIN, .revents = 0};
    return ::poll(&polled, 1, 0) == 0 && buffer.size() == 0;
  }
};

HttpClient::HttpClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

HttpClient::~HttpClient() = default;

Result<HttpClient::Connection*> HttpClient::connection() {
  if (connection_ && connection_->idle_and_open()) return connection_.get();
  connection_.reset();
  // sun_path holds the path and its terminating NUL; asio would throw.
  if (socket_path_.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("cannot connect to {}: the path is {} bytes long, a UNIX "
                    "socket's path at most {}",
                    socket_path_, socket_path_.size(), sizeof(sockaddr_un::sun_path) - 1));
  }
  auto opened = std::make_unique<Connection>();
  boost::system::error_code ec;
  opened->socket.connect(asio::local::stream_protocol::endpoint(socket_path_), ec);
  if (ec) return connect_error(socket_path_, ec);
  connection_ = std::move(opened);
  ++connections_opened_;
  return connection_.get();
}

Result<void> HttpClient::send(Connection& open, Method method, std::string_view target,
                              const std::optional<nlohmann::json>& body, const Headers& headers) {
  http::request<http::string_body> request{to_verb(method),
                                           beast::string_view(target.data(), target.size()), 11};
  // HTTP/1.1 requires Host; on a UNIX socket there is no name to give.
  request.set(http::field::host, "localhost");
  request.set(http::field::user_agent, "vmfork");
  request.keep_alive(true);
  if (body) {
    request.set(http::field::content_type, "application/json");
    request.body() = body->dump();
  }
  for (const auto& [name, value] : headers)
    request.set(name, value);
  request.prepare_payload();
  open.used = true;
  boost::system::error_code ec;
  http::write(open.socket, request, ec);
  if (ec) {
    connection_.reset();
    return make_error(ErrorCode::kSystem,
                      fmt::format("sending {} {} to the daemon at {}: {}", to_string(method),
                                  target, socket_path_, ec.message()));
  }
  return Ok{};
}

Result<ClientResponse> HttpClient::request_once(Method method, std::string_view target,
                                                const std::optional<nlohmann::json>& body,
                                                const Headers& headers, bool& reused_and_silent) {
  reused_and_silent = false;
  Result<Connection*> open = connection();
  if (!open) return open.error();
  Connection& connection = **open;
  const bool reused = connection.used;
  if (Result<void> sent = send(connection, method, target, body, headers); !sent) {
    reused_and_silent = reused;
    return sent.error();
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  boost::system::error_code ec;
  http::read(connection.socket, connection.buffer, parser, ec);
  if (ec) {
    reused_and_silent = reused && !parser.got_some();
    connection_.reset();
    return read_error(socket_path_, method, target, ec, parser.got_some());
  }
  http::response<http::string_body> message = parser.release();
  ClientResponse response;
  response.status = message.result_int();
  for (const auto& field : message)
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  response.body = std::move(message.body());
  if (!message.keep_alive()) connection_.reset();
  return response;
}

Result<ClientResponse> HttpClient::request(Method method, std::string_view target,
                                           const std::optional<nlohmann::json>& body,
                                           const Headers& headers) {
  bool reused_and_silent = false;
  Result<ClientResponse> response = request_once(method, target, body, headers, reused_and_silent);
  // The daemon may close an idle connection between our check and the
  // request reaching it. A GET changes nothing, so it is sent again on a
  // new connection; anything else is reported, never repeated behind the
  // user's back.
  if (!response && reused_and_silent && method == Method::kGet) {
    response = request_once(method, target, body, headers, reused_and_silent);
  }
  return response;
}

Result<void> HttpClient::stream(Method method, std::string_view target,
                                const ChunkHandler& on_chunk, const Headers& headers) {
  Result<Connection*> open = connection();
  if (!open) return open.error();
  Connection& connection = **open;
  if (Result<void> sent = send(connection, method, target, std::nullopt, headers); !sent) {
    return sent.error();
  }

  http::response_parser<http::buffer_body> parser;
  // A stream ends when the daemon ends it. Not boost::none: Boost 1.74
  // compares a Content-Length with the optional limit as `len > limit`,
  // which is true for every length when the limit is none.
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  boost::system::error_code ec;
  http::read_header(connection.socket, connection.buffer, parser, ec);
  if (ec) {
    const bool got_some = parser.got_some();
    connection_.reset();
    return read_error(socket_path_, method, target, ec, got_some);
  }
  const unsigned status = parser.get().result_int();
  const bool success = status >= 200 && status < 300;

  std::string fault;  // the body of an error response
  std::array<char, kStreamChunk> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some returns once it parsed something, so each piece of a slow
    // stream is handed on as it arrives instead of when a buffer fills.
    http::read_some(connection.socket, connection.buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};  // `chunk` is full: hand it on
    const size_t filled = chunk.size() - parser.get().body().size;
    if (filled > 0) {
      const std::string_view bytes(chunk.data(), filled);
      if (!success) {
        if (fault.size() + filled > kMaxFaultBody) break;  // enough to describe it
        fault.append(bytes);
      } else if (!on_chunk(bytes)) {
        connection_.reset();  // the rest of the response is never read
        return Ok{};
      }
    }
    if (ec) {
      connection_.reset();
      return read_error(socket_path_, method, target, ec, /*got_some=*/true);
    }
  }
  if (!parser.is_done() || !parser.get().keep_alive()) connection_.reset();
  if (!success) return fault_error(status, fault);
  return Ok{};
}

}  // namespace vmfork::api
