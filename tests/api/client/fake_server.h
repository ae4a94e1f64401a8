// A stand-in for `vmfork serve` in the client's tests: a thread accepting on
// a UNIX socket in a temporary directory, reading HTTP requests with Beast
// and answering each as the test's handler says, down to the raw bytes (a
// response cut short, a chunked stream written piece by piece). One
// connection at a time, as the client makes them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http.hpp>

#include "tests/support/temp_dir.h"

namespace vmfork::testing {

using FakeRequest = boost::beast::http::request<boost::beast::http::string_body>;

// The server's end of one connection, for the handler to answer on.
class FakePeer {
 public:
  explicit FakePeer(boost::asio::local::stream_protocol::socket& socket) : socket_(socket) {}

  // Writes `bytes` as they are: the handler composes the response.
  void write(std::string_view bytes);
  // A complete response with Content-Length.
  void respond(unsigned status, std::string_view body,
               std::string_view content_type = "application/json");
  // Blocks until the client closes its end; false if it sent more instead.
  bool wait_for_close();

 private:
  boost::asio::local::stream_protocol::socket& socket_;
};

// The raw text of a chunked response's head, and of one chunk.
std::string chunked_head(unsigned status, std::string_view content_type);
std::string chunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

class FakeServer {
 public:
  // After answering a request: read the next on the same connection, or
  // close it (the daemon ending the connection, or going away mid-response).
  enum class Then { kKeepOpen, kClose };
  using Handler = std::function<Then(const FakeRequest& request, FakePeer& peer)>;

  explicit FakeServer(Handler handler);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string path() const { return (dir_ / "api.sock").string(); }
  size_t connections_accepted() const { return accepted_.load(); }
  // Connections the server has closed (its handler said kClose, or the
  // client left).
  size_t connections_finished() const { return finished_.load(); }
  // The requests seen so far, in order.
  std::vector<FakeRequest> requests() const;

 private:
  void serve();
  void serve_connection(boost::asio::local::stream_protocol::socket& socket);

  TempDir dir_;
  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> finished_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<FakeRequest> requests_;  // GUARDED_BY(mutex_)
  std::thread thread_;                 // last: starts once the rest exists
};

}  // namespace vmfork::testing
