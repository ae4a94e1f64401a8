// The HTTP/1.1 server of `vmfork serve` on a UNIX socket (api_contract.md):
// Boost.Beast on one io thread that drives every connection, and a pool of
// workers that run the handler, so that a handler may block (a fork, a
// snapshot write) without stalling other clients.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "base/result.h"
#include "vmm/api/http/http_message.h"
#include "vmm/api/http/server_options.h"

namespace vmfork::api {

class ServerCore;

class HttpServer {
 public:
  using Handler = std::function<ApiResponse(const ApiRequest&)>;

  // Binds `socket_path` with mode 0600 and serves on its own threads. A
  // stale socket file (its daemon is dead) is replaced; a live one (another
  // daemon listens), a file that is not a socket, or a path too long for a
  // UNIX socket is an error naming the path. `handler` runs on the workers,
  // several at once; an exception it throws becomes a 500 fault.
  static Result<std::unique_ptr<HttpServer>> start(std::filesystem::path socket_path,
                                                   Handler handler, ServerOptions options = {});

  // Stops accepting, closes every connection and ends every stream
  // (ChunkStream::stop), waits for the handlers that run to return, joins
  // the threads and removes the socket file (if it is still ours).
  // Idempotent; the destructor calls it. Must not be called from a handler
  // or a ChunkStream (it waits for both).
  void stop();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const std::filesystem::path& socket_path() const;

 private:
  explicit HttpServer(std::unique_ptr<ServerCore> core);

  std::unique_ptr<ServerCore> core_;
};

}  // namespace vmfork::api
