// HttpClient against a fake daemon (fake_server.h): the connection is kept
// alive and replaced when the daemon closes it, a stream arrives in order and
// piece by piece, on_chunk can end it, and a daemon that goes away or was
// never there is an error that says so, never a hang.
#include "vmm/api/client/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/api/client/fake_server.h"
#include "vmm/api/client/fault.h"

namespace vmfork::api {
namespace {

using testing::chunk;
using testing::chunked_head;
using testing::FakePeer;
using testing::FakeRequest;
using testing::FakeServer;
using testing::kLastChunk;
using Then = FakeServer::Then;

// Only a guard against a hang turning into a ctest timeout: no test expects
// anything to take any particular time.
constexpr auto kHangGuard = std::chrono::seconds(120);

FakeServer::Handler answer_ok() {
  return [](const FakeRequest& request, FakePeer& peer) {
    peer.respond(200, R"({"target":")" + std::string(request.target()) + R"("})");
    return Then::kKeepOpen;
  };
}

TEST(HttpClient, RequestsShareOneKeptAliveConnection) {
  FakeServer server(answer_ok());
  HttpClient client(server.path());
  for (const char* target : {"/", "/vms", "/vms/vm0"}) {
    Result<ClientResponse> response = client.request(Method::kGet, target);
    ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->status, 200u);
    EXPECT_EQ(response->body, R"({"target":")" + std::string(target) + R"("})");
    EXPECT_EQ(response->header("content-type"), "application/json");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST(HttpClient, ABodyIsSentAsJsonWithItsMethodAndTarget) {
  FakeServer server(answer_ok());
  HttpClient client(server.path());
  Result<ClientResponse> response =
      client.request(Method::kPost, "/vms/vm0/fork", nlohmann::json{{"count", 3}});
  ASSERT_TRUE(response) << response.error().message;
  const std::vector<FakeRequest> seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method(), boost::beast::http::verb::post);
  EXPECT_EQ(seen[0].target(), "/vms/vm0/fork");
  EXPECT_EQ(seen[0][boost::beast::http::field::content_type], "application/json");
  EXPECT_EQ(nlohmann::json::parse(seen[0].body()), (nlohmann::json{{"count", 3}}));
}

TEST(HttpClient, ADaemonErrorIsAResponseWhoseFaultReadsAsOneLine) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.respond(404, R"({"fault_message":"no VM named vm9"})");
    return Then::kKeepOpen;
  });
  HttpClient client(server.path());
  Result<ClientResponse> response = client.request(Method::kDelete, "/vms/vm9");
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 404u);
  EXPECT_FALSE(response->success());
  EXPECT_EQ(describe_fault(response->status, response->body), "no VM named vm9 (HTTP 404)");
}

TEST(HttpClient, ADaemonClosingTheConnectionGetsANewOneForTheNextRequest) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.write("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    return Then::kClose;
  });
  HttpClient client(server.path());
  for (int i = 0; i < 2; ++i) {
    Result<ClientResponse> response =
        client.request(Method::kPatch, "/vms/vm0", nlohmann::json{{"state", "Paused"}});
    ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->status, 204u);
  }
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpClient, AnIdleConnectionTheDaemonClosedIsReplacedBeforeAPostIsSent) {
  // The daemon answers as if it kept the connection, then closes it while
  // the client is idle (an idle timeout). The POST must go over a new
  // connection, not be lost on the dead one.
  FakeServer server([first = true](const FakeRequest&, FakePeer& peer) mutable {
    peer.respond(200, "{}");
    if (!first) return Then::kKeepOpen;
    first = false;
    return Then::kClose;
  });
  HttpClient client(server.path());
  ASSERT_TRUE(client.request(Method::kGet, "/vms"));
  while (server.connections_finished() != 1)
    std::this_thread::yield();
  Result<ClientResponse> response =
      client.request(Method::kPost, "/vms/vm0/fork", nlohmann::json{});
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpClient, AChunkedStreamIsDeliveredInOrderEachPieceBeforeTheNextIsSent) {
  // The server writes a piece only once the client has handed on the one
  // before: a client that waited for the end (or for a full buffer) would
  // never see the second piece.
  std::mutex mutex;
  std::condition_variable changed;
  size_t delivered = 0;
  bool starved = false;
  const std::vector<std::string> pieces{R"({"seq":1,"event":"created"})"
                                        "\n",
                                        R"({"seq":2,"event":"paused"})"
                                        "\n",
                                        R"({"seq":3,"event":"resumed"})"
                                        "\n"};
  FakeServer server([&](const FakeRequest& request, FakePeer& peer) {
    if (request.target() != "/events") {
      peer.respond(200, "{}");
      return Then::kKeepOpen;
    }
    peer.write(chunked_head(200, "application/x-ndjson"));
    for (size_t i = 0; i < pieces.size(); ++i) {
      peer.write(chunk(pieces[i]));
      std::unique_lock lock(mutex);
      if (!changed.wait_for(lock, kHangGuard, [&] { return delivered > i; })) starved = true;
    }
    peer.write(kLastChunk);
    return Then::kKeepOpen;
  });
  HttpClient client(server.path());
  std::string received;
  Result<void> streamed = client.stream(Method::kGet, "/events", [&](std::string_view bytes) {
    received.append(bytes);
    std::lock_guard lock(mutex);
    // A piece may arrive in several reads: count the whole ones.
    size_t whole = 0;
    size_t at = 0;
    while (whole < pieces.size() && received.size() >= at + pieces[whole].size()) {
      at += pieces[whole].size();
      ++whole;
    }
    delivered = whole;
    changed.notify_all();
    return true;
  });
  ASSERT_TRUE(streamed) << streamed.error().message;
  EXPECT_EQ(received, pieces[0] + pieces[1] + pieces[2]);
  EXPECT_FALSE(starved) << "the client held a piece back until more arrived";
  // The stream ended cleanly: the connection carries the next request.
  ASSERT_TRUE(client.request(Method::kGet, "/"));
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST(HttpClient, OnChunkReturningFalseEndsTheStreamAndLeavesTheConnection) {
  std::promise<bool> client_left;
  FakeServer server([&](const FakeRequest&, FakePeer& peer) {
    peer.write(chunked_head(200, "text/plain"));
    peer.write(chunk("first"));
    // Nothing more until the client leaves: a client that kept reading
    // would block here forever.
    client_left.set_value(peer.wait_for_close());
    return Then::kClose;
  });
  HttpClient client(server.path());
  int calls = 0;
  Result<void> streamed =
      client.stream(Method::kGet, "/vms/vm0/console?follow=true", [&](std::string_view bytes) {
        ++calls;
        EXPECT_EQ(bytes, "first");
        return false;
      });
  ASSERT_TRUE(streamed) << streamed.error().message;
  EXPECT_EQ(calls, 1);
  std::future<bool> left = client_left.get_future();
  ASSERT_EQ(left.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_TRUE(left.get());
}

TEST(HttpClient, AStreamThatFailsReturnsTheDaemonsFault) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.respond(404, R"({"fault_message":"no VM named vm9"})");
    return Then::kKeepOpen;
  });
  HttpClient client(server.path());
  int calls = 0;
  Result<void> streamed =
      client.stream(Method::kGet, "/vms/vm9/console?follow=true", [&](std::string_view) {
        ++calls;
        return true;
      });
  ASSERT_FALSE(streamed);
  EXPECT_EQ(streamed.error().message, "no VM named vm9 (HTTP 404)");
  EXPECT_EQ(calls, 0);
}

TEST(HttpClient, TheDaemonClosingMidResponseIsAnError) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.write(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        R"({"vms":[)");
    return Then::kClose;
  });
  HttpClient client(server.path());
  Result<ClientResponse> response = client.request(Method::kGet, "/vms");
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message,
            fmt::format("the daemon at {} closed the connection in the middle of its response "
                        "to GET /vms",
                        server.path()));
}

TEST(HttpClient, TheDaemonClosingMidStreamIsAnError) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.write(chunked_head(200, "application/x-ndjson"));
    peer.write(chunk("{\"seq\":1}\n"));
    return Then::kClose;  // no last chunk
  });
  HttpClient client(server.path());
  std::string received;
  Result<void> streamed = client.stream(Method::kGet, "/events", [&](std::string_view bytes) {
    received.append(bytes);
    return true;
  });
  ASSERT_FALSE(streamed);
  EXPECT_EQ(received, "{\"seq\":1}\n");
  EXPECT_NE(streamed.error().message.find("closed the connection in the middle"), std::string::npos)
      << streamed.error().message;
}

TEST(HttpClient, TheDaemonClosingBeforeAnsweringAPostIsAnErrorNotARetry) {
  FakeServer server([](const FakeRequest&, FakePeer&) { return Then::kClose; });
  HttpClient client(server.path());
  Result<ClientResponse> response = client.request(Method::kPost, "/vms", nlohmann::json{});
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message,
            fmt::format("the daemon at {} closed the connection before answering POST /vms",
                        server.path()));
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpClient, AMissingSocketNamesTheCommandThatMakesIt) {
  testing::TempDir dir;
  const std::string path = (dir / "absent.sock").string();
  HttpClient client(path);
  Result<ClientResponse> response = client.request(Method::kGet, "/vms");
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message,
            fmt::format("cannot connect to {}: no such file (is `vmfork serve --api-sock {}` "
                        "running?)",
                        path, path));
  Result<void> streamed =
      client.stream(Method::kGet, "/events", [](std::string_view) { return true; });
  ASSERT_FALSE(streamed);
  EXPECT_EQ(streamed.error().message, response.error().message);
}

TEST(HttpClient, ASocketNobodyAcceptsOnIsConnectionRefused) {
  testing::TempDir dir;
  const std::string path = (dir / "stale.sock").string();
  {
    // Bound but never listening: what a daemon that died leaves behind.
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket socket(io);
    socket.open();
    socket.bind(boost::asio::local::stream_protocol::endpoint(path));
  }
  HttpClient client(path);
  Result<ClientResponse> response = client.request(Method::kGet, "/vms");
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message,
            fmt::format("cannot connect to {}: connection refused (is `vmfork serve --api-sock "
                        "{}` running?)",
                        path, path));
}

}  // namespace
}  // namespace vmfork::api
