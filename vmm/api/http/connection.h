// One client connection of the HttpServer, driven by the io thread: read a
// request, hand it to a worker, write the response, read the next one
// (keep-alive) or close. A streamed response ends the connection when it
// ends. Everything here runs on the io thread, so the fields need no lock;
// the workers reach a connection only by posting to that thread.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include "vmm/api/http/http_message.h"
#include "vmm/api/http/server_options.h"
#include "vmm/api/http/stream_channel.h"

namespace vmfork::api {

// What a connection needs from its server.
class ConnectionHost {
 public:
  virtual const ServerOptions& options() const = 0;
  // Runs the handler on a worker thread and calls `done` there with the
  // response (a 500 fault if the handler threw).
  virtual void dispatch(ApiRequest request, std::function<void(ApiResponse)> done) = 0;
  // The io thread: the connection is closed; drop it from the registry.
  virtual void forget(uint64_t id) = 0;

 protected:
  ~ConnectionHost() = default;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;

  Connection(Socket socket, ConnectionHost& host, uint64_t id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Both on the io thread. close() is idempotent; it ends a stream.
  void start() { read_request(); }
  void close();

 private:
  enum class AfterWrite { kReadNext, kClose };
  using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using StreamHeader = boost::beast::http::response<boost::beast::http::empty_body>;
  using StreamSerializer = boost::beast::http::response_serializer<boost::beast::http::empty_body>;

  void read_request();
  void on_header(boost::system::error_code error);
  void read_body();
  void on_body(boost::system::error_code error);
  void on_read_error(boost::system::error_code error);
  void respond(ApiResponse response);
  // What the request read last asks for: keep-alive or close.
  AfterWrite after_request() const {
    return keep_alive_ ? AfterWrite::kReadNext : AfterWrite::kClose;
  }
  void write(const ApiResponse& response, AfterWrite after);

  void start_stream(ApiResponse response);
  void drain_stream();
  void write_next_chunk();
  void watch_for_hangup();
  void end_stream();

  Socket socket_;
  ConnectionHost& host_;
  const uint64_t id_;
  bool closed_ = false;

  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  unsigned version_ = 11;  // of the request being answered
  bool keep_alive_ = false;
  std::unique_ptr<Response> response_;  // alive until its write completes

  // A streamed response: the client's ChunkStream and the channel its push
  // and close feed.
  std::shared_ptr<ChunkStream> stream_;
  std::shared_ptr<StreamChannel> channel_;
  std::unique_ptr<StreamHeader> stream_header_;
  std::unique_ptr<StreamSerializer> stream_serializer_;
  std::deque<std::string> unsent_;  // references stay valid across push_back
  bool chunked_ = true;             // HTTP/1.0 has no chunks: the body ends at close
  bool writing_ = false;
  bool stream_closing_ = false;
  std::array<char, 256> hangup_probe_{};
};

}  // namespace vmfork::api
