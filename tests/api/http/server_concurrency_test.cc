// Many clients at once, and handlers that block: every client is answered,
// and a blocked handler does not hold up the others. Order is shown with
// latches, never with timing thresholds (the hosts are shared and noisy).
#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "tests/api/http/raw_client.h"
#include "tests/api/http/server_fixture.h"
#include "tests/support/spin_barrier.h"

namespace vmfork::testing {
namespace {

using nlohmann::json;

class ServerConcurrency : public ServerTest {};

TEST_F(ServerConcurrency, SixtyFourClientsAreAllAnswered) {
  start(echo);
  constexpr int kClients = 64;
  constexpr int kRequests = 10;
  SpinBarrier barrier(kClients);
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      RawClient client(socket_path());
      barrier.arrive_and_wait();
      for (int i = 0; i < kRequests; ++i) {
        const std::string path = "/c/" + std::to_string(c) + "/" + std::to_string(i);
        const auto response = client.get(path);
        if (response.result_int() == 200 && json::parse(response.body())["path"] == path)
          ++answered;
      }
    });
  }
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(answered.load(), kClients * kRequests);
}

// The slow handler holds its worker until the test lets it go, which it
// does only after other clients were answered: if the slow handler stalled
// the server, they would never be, and the test would hang.
TEST_F(ServerConcurrency, ABlockedHandlerDoesNotStallOtherClients) {
  std::promise<void> slow_entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  start([&](const api::ApiRequest& request) {
    if (request.path == "/slow") {
      slow_entered.set_value();
      released.wait();
    }
    return echo(request);
  });
  std::atomic<bool> slow_answered{false};
  std::thread slow_client([&] {
    RawClient client(socket_path());
    EXPECT_EQ(client.get("/slow").result_int(), 200u);
    slow_answered = true;
  });
  slow_entered.get_future().wait();

  std::vector<std::thread> others;
  std::atomic<int> answered{0};
  for (int c = 0; c < 8; ++c) {
    others.emplace_back([&] {
      RawClient client(socket_path());
      for (int i = 0; i < 5; ++i)
        answered += client.get("/fast").result_int() == 200 ? 1 : 0;
    });
  }
  for (auto& other : others)
    other.join();
  EXPECT_EQ(answered.load(), 40);
  EXPECT_FALSE(slow_answered.load());  // it was still blocked all along

  release.set_value();
  slow_client.join();
  EXPECT_TRUE(slow_answered.load());
}

// Every worker blocked: requests wait for a worker, they are not lost.
TEST_F(ServerConcurrency, RequestsQueueWhileEveryWorkerIsBusy) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> entered{0};
  api::ServerOptions options;
  options.workers = 2;
  start(
      [&](const api::ApiRequest& request) {
        if (request.path == "/slow") {
          ++entered;
          released.wait();
        }
        return echo(request);
      },
      options);
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&] {
      RawClient client(socket_path());
      answered += client.get("/slow").result_int() == 200 ? 1 : 0;
    });
  }
  while (entered.load() < 2)
    std::this_thread::yield();
  std::thread queued([&] {
    RawClient client(socket_path());
    answered += client.get("/fast").result_int() == 200 ? 1 : 0;
  });
  release.set_value();
  for (auto& client : clients)
    client.join();
  queued.join();
  EXPECT_EQ(answered.load(), 3);
}

}  // namespace
}  // namespace vmfork::testing
