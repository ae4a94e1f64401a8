#include "vmm/api/http/http_server.h"

#include "vmm/api/http/server_core.h"

namespace vmfork::api {

Result<std::unique_ptr<HttpServer>> HttpServer::start(std::filesystem::path socket_path,
                                                      Handler handler, ServerOptions options) {
  auto core = std::make_unique<ServerCore>(std::move(socket_path), std::move(handler), options);
  if (auto started = core->start(); !started) return started.error();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(core)));
}

HttpServer::HttpServer(std::unique_ptr<ServerCore> core) : core_(std::move(core)) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::stop() {
  core_->stop();
}

const std::filesystem::path& HttpServer::socket_path() const {
  return core_->socket_path();
}

}  // namespace vmfork::api
