// The server's connections: keep-alive, HTTP/1.0, Connection: close,
// pipelining, and what a handler sees of a request.
#include <atomic>

#include "tests/api/http/raw_client.h"
#include "tests/api/http/server_fixture.h"

namespace vmfork::testing {
namespace {

using boost::beast::http::verb;
using nlohmann::json;

class ServerConnection : public ServerTest {};

TEST_F(ServerConnection, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  start([&](const api::ApiRequest& request) {
    ++calls;
    return echo(request);
  });
  RawClient client(socket_path());
  for (int i = 0; i < 5; ++i) {
    const auto response = client.get("/n/" + std::to_string(i));
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_TRUE(response.keep_alive());
    EXPECT_EQ(json::parse(response.body())["path"], "/n/" + std::to_string(i));
  }
  EXPECT_EQ(calls.load(), 5);
}

TEST_F(ServerConnection, ConnectionCloseIsHonoured) {
  start(echo);
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"));
  const auto response = client.read_response();
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_FALSE(response.keep_alive());
  EXPECT_TRUE(client.at_end_of_stream());
}

TEST_F(ServerConnection, Http10ClosesAfterTheResponse) {
  start(echo);
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("GET /a HTTP/1.0\r\n\r\n"));
  const auto response = client.read_response();
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response.version(), 10u);
  EXPECT_TRUE(client.at_end_of_stream());
}

TEST_F(ServerConnection, Http10KeepAliveIsHonoured) {
  start(echo);
  RawClient client(socket_path());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    const auto response = client.read_response();
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_TRUE(response.keep_alive());
  }
}

TEST_F(ServerConnection, PipelinedRequestsAreAnsweredInOrder) {
  start(echo);
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(json::parse(client.read_response().body())["path"], "/first");
  EXPECT_EQ(json::parse(client.read_response().body())["path"], "/second");
}

TEST_F(ServerConnection, HandlerSeesMethodDecodedPathQueryHeadersAndBody) {
  start(echo);
  RawClient client(socket_path());
  ASSERT_TRUE(
      client.send("POST /vms/vm%200/console?offset=10&follow HTTP/1.1\r\nAccept: text/plain\r\n"
                  "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"count\":2}"));
  const json body = json::parse(client.read_response().body());
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["path"], "/vms/vm 0/console");
  EXPECT_EQ(body["query"], (json{{"offset", "10"}, {"follow", ""}}));
  EXPECT_EQ(body["accept"], "text/plain");
  EXPECT_EQ(body["content_type"], "application/json");
  EXPECT_EQ(body["body"], "{\"count\":2}");
}

TEST_F(ServerConnection, ResponsesCarryStatusTypeAndExtraHeaders) {
  start([](const api::ApiRequest& request) {
    if (request.path == "/gone") return api::no_content();
    api::ApiResponse response;
    response.content_type = "text/plain";
    response.body = "hello";
    response.headers.emplace_back("X-Console-Offset", "5");
    return response;
  });
  RawClient client(socket_path());
  const auto text = client.get("/console");
  EXPECT_EQ(text[boost::beast::http::field::content_type], "text/plain");
  EXPECT_EQ(text["X-Console-Offset"], "5");
  EXPECT_EQ(text.body(), "hello");
  const auto gone = client.get("/gone");
  EXPECT_EQ(gone.result_int(), 204u);
  EXPECT_TRUE(gone.body().empty());
  EXPECT_EQ(client.get("/console").body(), "hello");  // the 204 left the connection usable
}

}  // namespace
}  // namespace vmfork::testing
