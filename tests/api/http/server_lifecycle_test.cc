// Starting and stopping: the socket file (mode 0600, a stale one replaced,
// a live one or a regular file refused), stop() with streams and slow
// handlers active, and a restart on the same path.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "tests/api/http/raw_client.h"
#include "tests/api/http/server_fixture.h"
#include "tests/api/http/test_stream.h"

namespace vmfork::testing {
namespace {

using boost::beast::http::verb;

class ServerLifecycle : public ServerTest {};

TEST_F(ServerLifecycle, SocketIsOwnerOnly) {
  start(echo);
  struct stat status {};
  ASSERT_EQ(::lstat(socket_path().c_str(), &status), 0);
  EXPECT_TRUE(S_ISSOCK(status.st_mode));
  EXPECT_EQ(status.st_mode & 0777, 0600u);
}

// The stream's stop() lets the slow handler return: the handler finishes
// only once stop() has begun ending streams, so stop() returning shows it
// both ended the stream and waited for the handler.
TEST_F(ServerLifecycle, StopEndsStreamsAndWaitsForSlowHandlers) {
  auto stream = std::make_shared<TestStream>();
  std::promise<void> slow_entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> slow_returned{false};
  stream->on_stop([&] { release.set_value(); });
  start([&](const api::ApiRequest& request) {
    if (request.path == "/slow") {
      slow_entered.set_value();
      released.wait();
      slow_returned = true;
      return echo(request);
    }
    api::ApiResponse response;
    response.stream = stream;
    return response;
  });

  RawClient stream_client(socket_path());
  stream_client.request(verb::get, "/events");
  stream->wait_started();
  std::thread slow_client([&] {
    RawClient client(socket_path());
    client.request(verb::get, "/slow");
    // The server closes the connection before it could answer.
    EXPECT_THROW(client.read_response(), boost::system::system_error);
  });
  slow_entered.get_future().wait();

  server_->stop();
  EXPECT_TRUE(slow_returned.load());
  EXPECT_EQ(stream->stops(), 1);
  EXPECT_FALSE(stream->push("after stop"));
  EXPECT_FALSE(std::filesystem::exists(socket_path()));
  slow_client.join();
  server_->stop();  // idempotent
  EXPECT_EQ(stream->stops(), 1);
}

TEST_F(ServerLifecycle, RestartOnTheSamePathWorks) {
  start(echo);
  {
    RawClient client(socket_path());
    EXPECT_EQ(client.get("/").result_int(), 200u);
  }
  server_->stop();
  server_.reset();
  start(echo);
  RawClient client(socket_path());
  EXPECT_EQ(client.get("/").result_int(), 200u);
}

TEST_F(ServerLifecycle, SecondServerOnALivePathIsRefused) {
  start(echo);
  auto second = api::HttpServer::start(socket_path(), echo, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message,
            "another daemon is already listening on " + socket_path().string());
  RawClient client(socket_path());  // the first one still serves
  EXPECT_EQ(client.get("/").result_int(), 200u);
}

TEST_F(ServerLifecycle, StaleSocketOfADeadDaemonIsReplaced) {
  // A socket file nobody listens on any more, as a killed daemon leaves it.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, socket_path().c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  ::close(fd);
  ASSERT_TRUE(std::filesystem::exists(socket_path()));

  start(echo);
  RawClient client(socket_path());
  EXPECT_EQ(client.get("/").result_int(), 200u);
}

TEST_F(ServerLifecycle, FileThatIsNotASocketIsRefusedAndKept) {
  std::ofstream(socket_path()) << "precious";
  auto server = api::HttpServer::start(socket_path(), echo, {});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.error().message,
            socket_path().string() + " exists and is not a socket; refusing to replace it");
  std::string content;
  std::ifstream(socket_path()) >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(ServerLifecycle, PathTooLongForASocketIsRefused) {
  auto server = api::HttpServer::start(directory_.path() / std::string(200, 's'), echo, {});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("a UNIX socket path holds at most 107"), std::string::npos)
      << server.error().message;
}

TEST_F(ServerLifecycle, DestructorStopsAndRemovesTheSocket) {
  start(echo);
  RawClient idle(socket_path());  // a connection open across the stop
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(socket_path()));
  EXPECT_TRUE(idle.at_end_of_stream());
}

}  // namespace
}  // namespace vmfork::testing
