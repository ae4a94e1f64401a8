// Streamed responses (GET /events, a console that follows): chunks pushed
// from other threads reach the client in order, close() ends the response
// with the terminating chunk, and the stream learns exactly once that it is
// over, however the connection ends.
#include <future>
#include <thread>

#include "tests/api/http/raw_client.h"
#include "tests/api/http/server_fixture.h"
#include "tests/api/http/test_stream.h"

namespace vmfork::testing {
namespace {

using boost::beast::http::verb;

class ServerStream : public ServerTest {
 protected:
  void SetUp() override {
    start([this](const api::ApiRequest& request) {
      if (request.path == "/after") return echo(request);
      if (request.path == "/late") handler_may_return_.get_future().wait();
      api::ApiResponse response;
      response.content_type = "application/x-ndjson";
      response.stream = stream_;
      return response;
    });
  }
  std::shared_ptr<TestStream> stream_ = std::make_shared<TestStream>();
  std::promise<void> handler_may_return_;
};

std::string line(int i) {
  return "{\"seq\":" + std::to_string(i) + "}\n";
}

TEST_F(ServerStream, ChunksFromAnotherThreadArriveInOrderAndCloseEndsTheResponse) {
  RawClient client(socket_path());
  client.request(verb::get, "/events");
  stream_->wait_started();
  constexpr int kChunks = 300;
  std::thread pusher([&] {
    for (int i = 0; i < kChunks; ++i)
      EXPECT_TRUE(stream_->push(line(i)));
    stream_->close();
    EXPECT_FALSE(stream_->push(line(kChunks)));  // after close(): refused
  });
  // Beast's read returns only once it has read the terminating chunk: a
  // close() that did not send it would make this throw partial_message.
  const auto response = client.read_response();
  pusher.join();
  std::string expected;
  for (int i = 0; i < kChunks; ++i)
    expected += line(i);
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_TRUE(response.chunked());
  EXPECT_EQ(response[boost::beast::http::field::content_type], "application/x-ndjson");
  EXPECT_EQ(response.body(), expected);
  EXPECT_TRUE(client.at_end_of_stream());
  stream_->wait_stopped();
  EXPECT_EQ(stream_->starts(), 1);
  EXPECT_EQ(stream_->stops(), 1);
}

TEST_F(ServerStream, ChunksFromSeveralThreadsEachKeepTheirOrder) {
  RawClient client(socket_path());
  client.request(verb::get, "/events");
  stream_->wait_started();
  constexpr int kThreads = 4;
  constexpr int kChunks = 100;
  std::vector<std::thread> pushers;
  for (int t = 0; t < kThreads; ++t) {
    pushers.emplace_back([&, t] {
      for (int i = 0; i < kChunks; ++i)
        stream_->push(std::to_string(t) + ":" + std::to_string(i) + "\n");
    });
  }
  for (auto& pusher : pushers)
    pusher.join();
  stream_->close();
  const std::string body = client.read_response().body();
  std::vector<int> next(kThreads, 0);
  size_t start = 0;
  while (start < body.size()) {
    const size_t end = body.find('\n', start);
    const std::string item = body.substr(start, end - start);
    const int t = std::stoi(item.substr(0, item.find(':')));
    EXPECT_EQ(std::stoi(item.substr(item.find(':') + 1)), next[static_cast<size_t>(t)]++) << item;
    start = end + 1;
  }
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(next[static_cast<size_t>(t)], kChunks);
}

TEST_F(ServerStream, Http10StreamEndsWhenTheConnectionCloses) {
  RawClient client(socket_path());
  ASSERT_TRUE(client.send("GET /events HTTP/1.0\r\n\r\n"));
  stream_->wait_started();
  EXPECT_TRUE(stream_->push(line(0)));
  EXPECT_TRUE(stream_->push(line(1)));
  stream_->close();
  const auto response = client.read_response();  // a 1.0 body without length ends at close
  EXPECT_FALSE(response.chunked());
  EXPECT_EQ(response.body(), line(0) + line(1));
  stream_->wait_stopped();
  EXPECT_EQ(stream_->stops(), 1);
}

// A quiet stream (no chunk to write) still learns at once that its client
// left: the server watches the socket while it streams.
TEST_F(ServerStream, ClientLeavingMidStreamStopsTheStreamOnce) {
  {
    RawClient client(socket_path());
    client.request(verb::get, "/events");
    stream_->wait_started();
    EXPECT_TRUE(stream_->push(line(0)));
    client.hang_up();
  }
  stream_->wait_stopped();
  EXPECT_FALSE(stream_->push(line(1)));
  RawClient next(socket_path());
  EXPECT_EQ(next.get("/after").result_int(), 200u);
  server_->stop();
  EXPECT_EQ(stream_->starts(), 1);
  EXPECT_EQ(stream_->stops(), 1);
}

// The client left while the handler ran: the stream it returns is never
// started (or is, and then sees the hang-up), but is stopped exactly once.
TEST_F(ServerStream, ClientGoneBeforeTheHandlerReturnedStillStopsTheStream) {
  {
    RawClient client(socket_path());
    client.request(verb::get, "/late");
    client.hang_up();
  }
  handler_may_return_.set_value();
  stream_->wait_stopped();
  server_->stop();
  EXPECT_LE(stream_->starts(), 1);
  EXPECT_EQ(stream_->stops(), 1);
}

}  // namespace
}  // namespace vmfork::testing
