// What the server answers to requests it cannot read or a handler that
// throws: a fault with the contract's status, never a crash.
#include <atomic>
#include <stdexcept>

#include "tests/api/http/raw_client.h"
#include "tests/api/http/server_fixture.h"

namespace vmfork::testing {
namespace {

using boost::beast::http::verb;

class ServerErrors : public ServerTest {
 protected:
  void SetUp() override {
    api::ServerOptions options;
    options.max_body_bytes = 1024;
    start(
        [this](const api::ApiRequest& request) {
          ++calls_;
          if (request.path == "/throw") throw std::runtime_error("boom");
          if (request.path == "/throw-int") throw 42;
          if (request.path == "/bad-status") return api::fault(1000, "no such status");
          return echo(request);
        },
        options);
  }
  std::atomic<int> calls_{0};
};

TEST_F(ServerErrors, GarbageIs400AndClosesTheConnection) {
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("\x01\x02 garbage \x7f\r\n\r\n"));
  const auto response = client.read_response();
  EXPECT_EQ(response.result_int(), 400u);
  EXPECT_TRUE(fault_message_of(response.body()).starts_with("malformed HTTP request"));
  EXPECT_FALSE(response.keep_alive());
  EXPECT_TRUE(client.at_end_of_stream());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerErrors, OversizedHeadersAre431) {
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n"));
  const auto response = client.read_response();
  EXPECT_EQ(response.result_int(), 431u);
  EXPECT_EQ(fault_message_of(response.body()), "the request's headers exceed 8192 bytes");
  EXPECT_TRUE(client.at_end_of_stream());
  EXPECT_EQ(calls_.load(), 0);
}

// The client sends no byte of its 10 MiB body: if the server waited for
// the body before answering, this test would hang instead of passing.
TEST_F(ServerErrors, BodyOverTheLimitIs413BeforeItIsRead) {
  RawClient client(socket_path());
  ASSERT_TRUE(client.send(
      "POST /vms HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"));
  const auto response = client.read_response();
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_EQ(fault_message_of(response.body()), "the request's body exceeds 1024 bytes");
  EXPECT_TRUE(client.at_end_of_stream());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerErrors, ChunkedBodyOverTheLimitIs413) {
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("POST /vms HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                          std::string(0x800, 'x') + "\r\n"));
  EXPECT_EQ(client.read_response().result_int(), 413u);
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerErrors, BodyThatIsNotJsonTypeIs415AndTheConnectionLivesOn) {
  RawClient client(socket_path());
  client.request(verb::post, "/vms", "{}", "text/plain");
  const auto response = client.read_response();
  EXPECT_EQ(response.result_int(), 415u);
  EXPECT_EQ(fault_message_of(response.body()),
            "a request body must be JSON (Content-Type application/json), not text/plain");
  EXPECT_EQ(calls_.load(), 0);
  EXPECT_EQ(client.get("/after").result_int(), 200u);
}

TEST_F(ServerErrors, JsonCurlsFormTypeAndNoTypeAreAccepted) {
  RawClient client(socket_path());
  client.request(verb::post, "/vms", "{}", "application/json");
  EXPECT_EQ(client.read_response().result_int(), 200u);
  client.request(verb::post, "/vms", "{}", "application/x-www-form-urlencoded");
  EXPECT_EQ(client.read_response().result_int(), 200u);
  ASSERT_TRUE(client.send("POST /vms HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));
  EXPECT_EQ(client.read_response().result_int(), 200u);
  EXPECT_EQ(calls_.load(), 3);
}

TEST_F(ServerErrors, BadTargetIs400AndTheConnectionLivesOn) {
  RawClient client(socket_path());
  const auto response = client.get("/vms/%zz");
  EXPECT_EQ(response.result_int(), 400u);
  EXPECT_EQ(fault_message_of(response.body()), "bad percent-encoding at byte 5 of '/vms/%zz'");
  EXPECT_EQ(client.get("/after").result_int(), 200u);
}

TEST_F(ServerErrors, HandlerExceptionIs500AndTheServerLivesOn) {
  RawClient client(socket_path());
  const auto response = client.get("/throw");
  EXPECT_EQ(response.result_int(), 500u);
  EXPECT_EQ(fault_message_of(response.body()), "internal error: boom");
  const auto other = client.get("/throw-int");
  EXPECT_EQ(other.result_int(), 500u);
  EXPECT_EQ(fault_message_of(other.body()), "internal error: an unknown exception");
  EXPECT_EQ(client.get("/after").result_int(), 200u);
  RawClient another(socket_path());
  EXPECT_EQ(another.get("/after").result_int(), 200u);
}

TEST_F(ServerErrors, HandlerStatusOutsideHttpRangeIs500) {
  RawClient client(socket_path());
  const auto response = client.get("/bad-status");
  EXPECT_EQ(response.result_int(), 500u);
  EXPECT_EQ(fault_message_of(response.body()),
            "internal error: a handler answered with status 1000");
  EXPECT_EQ(client.get("/after").result_int(), 200u);
}

TEST_F(ServerErrors, RefusalHonoursConnectionClose) {
  RawClient client(socket_path());
  ASSERT_TRUE(
      client.send("POST /vms HTTP/1.1\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                  "Content-Length: 2\r\n\r\n{}"));
  EXPECT_EQ(client.read_response().result_int(), 415u);
  EXPECT_TRUE(client.at_end_of_stream());
}

// curl sends "Expect: 100-continue" before a large body and waits for the
// interim response (a second, then sends anyway): the server answers at once.
TEST_F(ServerErrors, ExpectContinueGetsAnInterimResponse) {
  RawClient client(socket_path());
  ASSERT_TRUE(
      client.send("POST /vms HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  EXPECT_EQ(client.read_response().result_int(), 100u);
  ASSERT_TRUE(client.send("{}"));
  EXPECT_EQ(client.read_response().result_int(), 200u);
}

// Half a body, then the client leaves: the handler never sees the request,
// and the server serves the next client.
TEST_F(ServerErrors, ClientLeavingMidBodyNeverReachesTheHandler) {
  {
    RawClient client(socket_path());
    ASSERT_TRUE(client.send("POST /vms HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"guest\":"));
    client.hang_up();
  }
  RawClient next(socket_path());
  EXPECT_EQ(next.get("/after").result_int(), 200u);
  EXPECT_EQ(calls_.load(), 1);
}

}  // namespace
}  // namespace vmfork::testing
