// What the server tests share: a server on a socket in a fresh temporary
// directory, and a handler that echoes the request it was given.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"
#include "vmm/api/http/http_server.h"

namespace vmfork::testing {

// {"method", "path", "query", "body", "content_type", "accept"}.
inline api::ApiResponse echo(const api::ApiRequest& request) {
  return api::json_response(200,
                            {{"method", std::string(boost::beast::http::to_string(request.method))},
                             {"path", request.path},
                             {"query", request.query},
                             {"body", request.body},
                             {"content_type", request.content_type},
                             {"accept", request.accept}});
}

inline std::string fault_message_of(const std::string& body) {
  return nlohmann::json::parse(body).at("fault_message").get<std::string>();
}

class ServerTest : public ::testing::Test {
 protected:
  void start(api::HttpServer::Handler handler, api::ServerOptions options = {}) {
    auto server = api::HttpServer::start(socket_path(), std::move(handler), options);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
  }
  std::filesystem::path socket_path() const { return directory_ / "api.sock"; }

  TempDir directory_;
  std::unique_ptr<api::HttpServer> server_;  // declared last: stops before the directory goes
};

}  // namespace vmfork::testing
