#include "tests/api/client/fake_server.h"

#include <fmt/format.h>

#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace vmfork::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using UnixSocket = asio::local::stream_protocol::socket;

void FakePeer::write(std::string_view bytes) {
  boost::system::error_code ignored;  // a client that left is the test's to notice
  asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ignored);
}

void FakePeer::respond(unsigned status, std::string_view body, std::string_view content_type) {
  http::response<http::string_body> response{static_cast<http::status>(status), 11};
  response.set(http::field::content_type,
               boost::beast::string_view(content_type.data(), content_type.size()));
  response.body() = std::string(body);
  response.prepare_payload();
  boost::system::error_code ignored;
  http::write(socket_, response, ignored);
}

bool FakePeer::wait_for_close() {
  std::array<char, 256> bytes{};
  boost::system::error_code ec;
  const size_t read = socket_.read_some(asio::buffer(bytes), ec);
  return read == 0 && ec;
}

std::string chunked_head(unsigned status, std::string_view content_type) {
  return fmt::format("HTTP/1.1 {} OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                     status, content_type);
}

std::string chunk(std::string_view data) {
  return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
}

FakeServer::FakeServer(Handler handler)
    : handler_(std::move(handler)),
      acceptor_(io_, asio::local::stream_protocol::endpoint(path())),
      thread_([this] { serve(); }) {}

FakeServer::~FakeServer() {
  // accept() blocks; a connection of our own wakes it to see `stopping_`.
  stopping_ = true;
  asio::io_context io;
  UnixSocket waker(io);
  boost::system::error_code ignored;
  waker.connect(asio::local::stream_protocol::endpoint(path()), ignored);
  thread_.join();
}

std::vector<FakeRequest> FakeServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void FakeServer::serve() {
  while (true) {
    UnixSocket socket(io_);
    boost::system::error_code ec;
    acceptor_.accept(socket, ec);
    if (stopping_ || ec) return;
    ++accepted_;
    serve_connection(socket);
    socket.close(ec);
    ++finished_;
  }
}

void FakeServer::serve_connection(UnixSocket& socket) {
  boost::beast::flat_buffer buffer;
  FakePeer peer(socket);
  while (true) {
    FakeRequest request;
    boost::system::error_code ec;
    http::read(socket, buffer, request, ec);
    if (ec) return;  // the client closed the connection
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    if (handler_(request, peer) == Then::kClose) return;
  }
}

}  // namespace vmfork::testing
