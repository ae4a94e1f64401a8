#include "vmm/api/http/connection.h"

#include <spdlog/spdlog.h>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "vmm/api/http/content_type.h"
#include "vmm/api/http/request_target.h"

namespace vmfork::api {
namespace http = boost::beast::http;
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// curl sends "Expect: 100-continue" before a large body and waits (a
// second) for this before sending it.
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_hangup(const error_code& error) {
  return error == http::error::end_of_stream || error == http::error::partial_message ||
         error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::broken_pipe || error == asio::error::operation_aborted;
}

}  // namespace

Connection::Connection(Socket socket, ConnectionHost& host, uint64_t id)
    : socket_(std::move(socket)), host_(host), id_(id) {}

Connection::~Connection() {
  // close() ends a stream on every path the server takes; this covers a
  // connection dropped without it, so that stop() still comes exactly once.
  end_stream();
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  end_stream();
  error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  host_.forget(id_);
}

void Connection::read_request() {
  parser_.emplace();
  parser_->header_limit(host_.options().max_header_bytes);
  parser_->body_limit(host_.options().max_body_bytes);
  http::async_read_header(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](error_code error, size_t) { self->on_header(error); });
}

void Connection::on_header(error_code error) {
  if (closed_) return;
  if (error) return on_read_error(error);
  const auto& request = parser_->get();
  version_ = request.version();
  if (!boost::beast::iequals(request[http::field::expect], "100-continue") || parser_->is_done()) {
    return read_body();
  }
  asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                    [self = shared_from_this()](error_code write_error, size_t) {
                      if (self->closed_) return;
                      if (write_error) return self->close();
                      self->read_body();
                    });
}

void Connection::read_body() {
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](error_code error, size_t) { self->on_body(error); });
}

void Connection::on_read_error(error_code error) {
  // The request cannot be read to its end, so the connection cannot carry
  // another: each answer closes it.
  if (is_hangup(error)) return close();
  if (error == http::error::header_limit) {
    return write(fault(431, "the request's headers exceed " +
                                std::to_string(host_.options().max_header_bytes) + " bytes"),
                 AfterWrite::kClose);
  }
  if (error == http::error::body_limit) {
    return write(fault(413, "the request's body exceeds " +
                                std::to_string(host_.options().max_body_bytes) + " bytes"),
                 AfterWrite::kClose);
  }
  write(fault(400, "malformed HTTP request: " + error.message()), AfterWrite::kClose);
}

void Connection::on_body(error_code error) {
  if (closed_) return;
  if (error) return on_read_error(error);
  auto message = parser_->release();
  keep_alive_ = message.keep_alive();

  ApiRequest request;
  request.method = message.method();
  request.accept = std::string(message[http::field::accept]);
  request.content_type = std::string(message[http::field::content_type]);
  request.body = std::move(message.body());
  if (request.method == http::verb::unknown) {
    return write(fault(400, "unknown method " + std::string(message.method_string())),
                 after_request());
  }
  const auto raw_target = message.target();  // a boost::string_view in Boost 1.74
  auto target = parse_target(std::string_view(raw_target.data(), raw_target.size()));
  if (!target) return write(fault(400, target.error().message), after_request());
  request.path = std::move(target->path);
  request.query = std::move(target->query);
  if (!request.body.empty() && !is_accepted_body_type(request.content_type)) {
    return write(fault(415, "a request body must be JSON (Content-Type application/json), not " +
                                request.content_type),
                 after_request());
  }

  auto executor = socket_.get_executor();
  host_.dispatch(
      std::move(request), [self = shared_from_this(), executor](ApiResponse response) mutable {
        // Move the connection out: the worker must not hold the last reference
        // (the connection belongs to the io thread).
        asio::post(executor, [self = std::move(self), response = std::move(response)]() mutable {
          self->respond(std::move(response));
        });
      });
}

void Connection::respond(ApiResponse response) {
  if (closed_) {
    // The client left while the handler ran: the stream still learns it is over.
    if (response.stream) response.stream->stop();
    return;
  }
  if (response.stream && (response.status < 200 || response.status > 599)) {
    // write() turns the bad status into a 500; the stream never starts.
    std::exchange(response.stream, nullptr)->stop();
  }
  if (response.stream) return start_stream(std::move(response));
  write(response, after_request());
}

void Connection::write(const ApiResponse& api_response, AfterWrite after) {
  // Beast throws on a status outside 100..999, and a throw on the io thread
  // would end the daemon: a handler's bad status is its bug, a 500.
  if (api_response.status < 200 || api_response.status > 599) {
    return write(fault(500, "internal error: a handler answered with status " +
                                std::to_string(api_response.status)),
                 after);
  }
  response_ = std::make_unique<Response>();
  Response& response = *response_;
  response.version(version_);
  response.result(api_response.status);
  if (!api_response.content_type.empty()) {
    response.set(http::field::content_type, api_response.content_type);
  }
  for (const auto& [name, value] : api_response.headers)
    response.insert(name, value);
  response.body() = api_response.body;
  response.keep_alive(after == AfterWrite::kReadNext);
  response.prepare_payload();
  http::async_write(socket_, response,
                    [self = shared_from_this(), after](error_code error, size_t) {
                      if (self->closed_) return;
                      self->response_.reset();
                      if (error || after == AfterWrite::kClose) return self->close();
                      self->read_request();
                    });
}

void Connection::start_stream(ApiResponse response) {
  stream_ = std::move(response.stream);
  chunked_ = version_ >= 11;
  std::weak_ptr<Connection> weak = shared_from_this();
  channel_ = std::make_shared<StreamChannel>([weak, executor = socket_.get_executor()] {
    asio::post(executor, [weak] {
      if (auto self = weak.lock()) self->drain_stream();
    });
  });

  stream_header_ = std::make_unique<StreamHeader>();
  StreamHeader& header = *stream_header_;
  header.version(version_);
  header.result(response.status);
  if (!response.content_type.empty()) header.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers)
    header.insert(name, value);
  // The stream ends the connection: the client reads it until it closes.
  header.keep_alive(false);
  if (chunked_) header.chunked(true);
  stream_serializer_ = std::make_unique<StreamSerializer>(header);
  writing_ = true;
  http::async_write_header(
      socket_, *stream_serializer_, [self = shared_from_this()](error_code error, size_t) {
        self->writing_ = false;
        if (self->closed_) return;
        if (error) return self->close();
        auto channel = self->channel_;
        self->stream_->start(
            [channel](std::string chunk) { return channel->push(std::move(chunk)); },
            [channel] { channel->close(); });
        if (self->closed_) return;  // start() cannot close us, but stay safe
        self->watch_for_hangup();
        self->drain_stream();
      });
}

void Connection::drain_stream() {
  if (closed_ || !channel_) return;
  StreamChannel::Taken taken = channel_->take();
  if (taken.overflowed) {
    spdlog::warn("api: dropping a stream client that fell {} bytes behind", kMaxQueuedStreamBytes);
    return close();
  }
  for (std::string& chunk : taken.chunks)
    unsent_.push_back(std::move(chunk));
  if (taken.closed) stream_closing_ = true;
  write_next_chunk();
}

void Connection::write_next_chunk() {
  if (writing_ || closed_) return;
  if (unsent_.empty()) {
    if (!stream_closing_) return;
    if (!chunked_) return close();
    writing_ = true;
    asio::async_write(socket_, http::make_chunk_last(),
                      [self = shared_from_this()](error_code, size_t) {
                        self->writing_ = false;
                        self->close();
                      });
    return;
  }
  writing_ = true;
  auto on_written = [self = shared_from_this()](error_code error, size_t) {
    self->writing_ = false;
    if (self->closed_) return;
    if (error) return self->close();
    self->channel_->written(self->unsent_.front().size());
    self->unsent_.pop_front();
    self->write_next_chunk();
  };
  const auto data = asio::buffer(unsent_.front());
  if (chunked_) {
    asio::async_write(socket_, http::make_chunk(data), std::move(on_written));
  } else {
    asio::async_write(socket_, data, std::move(on_written));
  }
}

// Nobody reads the socket while a stream runs, so a client that leaves
// would go unnoticed until the next chunk (which may be never, on a quiet
// GET /events). A read that waits for its end notices at once. What the
// client might send meanwhile is dropped: the connection ends with the
// stream.
void Connection::watch_for_hangup() {
  socket_.async_read_some(asio::buffer(hangup_probe_),
                          [self = shared_from_this()](error_code error, size_t) {
                            if (self->closed_) return;
                            if (error) return self->close();
                            self->watch_for_hangup();
                          });
}

void Connection::end_stream() {
  if (channel_) channel_->end();
  // Moved out first: stop() is called exactly once.
  if (auto stream = std::move(stream_)) stream->stop();
}

}  // namespace vmfork::api
