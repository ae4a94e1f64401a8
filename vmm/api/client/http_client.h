// The client of `vmfork serve`'s API (api_contract.md): HTTP/1.1 over the
// daemon's UNIX socket, one request at a time, the connection kept alive
// between requests. Errors are values naming the socket and what failed; a
// daemon's own error response is a response (request) or a fault (stream).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "vmm/api/client/client_response.h"

namespace vmfork::api {

// Called with the bytes of a streamed body as they arrive (chunk borders
// are the transport's, not lines or events); false ends the stream.
using ChunkHandler = std::function<bool(std::string_view chunk)>;

// Not thread-safe: one thread uses a client, one request at a time (the CLI
// sends one; a test thread owns its own client).
class HttpClient {
 public:
  explicit HttpClient(std::string socket_path);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response, whatever its status: a
  // 4xx/5xx is a ClientResponse, an error only when no complete response
  // came (no daemon, the daemon closed the connection mid-response). A
  // `body` is sent as application/json.
  Result<ClientResponse> request(Method method, std::string_view target,
                                 const std::optional<nlohmann::json>& body = std::nullopt,
                                 const Headers& headers = {});

  // Sends a request whose response is a stream (GET /events, console
  // follow) and hands its body to `on_chunk` as it arrives, until the
  // daemon ends the response (Ok) or `on_chunk` returns false (Ok; the
  // connection is closed since the rest of the response is never read). A
  // non-2xx response is read whole and returned as its fault (fault.h);
  // the connection closing before the response ended is an error.
  Result<void> stream(Method method, std::string_view target, const ChunkHandler& on_chunk,
                      const Headers& headers = {});

  const std::string& socket_path() const { return socket_path_; }
  // Connections opened so far: 1 after any number of requests while the
  // daemon keeps the connection alive (the tests check the reuse).
  uint64_t connections_opened() const { return connections_opened_; }

 private:
  struct Connection;  // the socket and its read buffer (Beast, in the .cc)

  // The open connection, or a new one when there is none or the daemon
  // closed the idle one.
  Result<Connection*> connection();
  Result<void> send(Connection& connection, Method method, std::string_view target,
                    const std::optional<nlohmann::json>& body, const Headers& headers);
  Result<ClientResponse> request_once(Method method, std::string_view target,
                                      const std::optional<nlohmann::json>& body,
                                      const Headers& headers, bool& reused_and_silent);

  std::string socket_path_;
  std::unique_ptr<Connection> connection_;  // null: none open
  uint64_t connections_opened_ = 0;
};

}  // namespace vmfork::api
