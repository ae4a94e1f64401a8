// A client for the server tests that can misbehave: a blocking UNIX socket
// on which a test sends any bytes (half a request, garbage) or hangs up,
// and Beast's parser to read what the server answers.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace vmfork::testing {

class RawClient {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  explicit RawClient(const std::filesystem::path& socket_path) : socket_(io_) {
    socket_.connect(boost::asio::local::stream_protocol::endpoint(socket_path.string()));
  }

  // Sends bytes as they are; false if the server has closed its end.
  bool send(std::string_view bytes) {
    boost::system::error_code error;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), error);
    return !error;
  }

  // One well-formed request.
  void request(boost::beast::http::verb method, std::string target, std::string body = "",
               std::string content_type = "application/json") {
    boost::beast::http::request<boost::beast::http::string_body> message{method, target, 11};
    if (!body.empty()) message.set(boost::beast::http::field::content_type, content_type);
    message.body() = std::move(body);
    message.prepare_payload();
    boost::beast::http::write(socket_, message);
  }

  // The next response (throws if the connection ends before a whole one).
  Response read_response() {
    Response response;
    boost::beast::http::read(socket_, buffer_, response);
    return response;
  }

  Response get(std::string target) {
    request(boost::beast::http::verb::get, std::move(target));
    return read_response();
  }

  // Whether the server has closed the connection: the next read finds the
  // end of the stream (rather than bytes).
  bool at_end_of_stream() {
    if (buffer_.size() > 0) return false;
    char byte;
    boost::system::error_code error;
    boost::asio::read(socket_, boost::asio::buffer(&byte, 1), error);
    return error == boost::asio::error::eof || error == boost::asio::error::connection_reset;
  }

  void hang_up() {
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::local::stream_protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::local::stream_protocol::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace vmfork::testing
