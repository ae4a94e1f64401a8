// The request a handler sees and the response it returns: the transport's
// whole interface to the service. Requests arrive parsed (path decoded,
// query split); responses are a status and a JSON body, or a stream of
// chunks (GET /events, a console that follows the VM). Every error is a
// fault: {"fault_message": "..."}, Firecracker's shape (api_contract.md).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

namespace vmfork::api {

struct ApiRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string path;                          // the target without the query, percent-decoded
  std::map<std::string, std::string> query;  // ?a=b&c (c -> ""), percent-decoded
  std::string accept;                        // the Accept header, "" if none
  std::string content_type;                  // "" if none
  std::string body;
};

// A response streamed in chunks. The server calls start() once, on its io
// thread, after the response header is on its way, with
//   push:  queue one chunk (any thread); false once the stream has ended
//          (client gone, server stopping, close() called, or the client
//          reads too slowly: see kMaxQueuedStreamBytes in stream_channel.h);
//   close: end the stream (any thread); the client sees the last chunk.
// It calls stop() exactly once for every stream a handler returned, when
// the stream ends for any reason (client gone, server stopping, after
// close()), also when start() never came because the client had already
// gone. After stop(), push returns false and the server never calls push or
// close again. Neither start() nor stop() may block: they run on the thread
// that serves every connection.
class ChunkStream {
 public:
  virtual ~ChunkStream() = default;
  virtual void start(std::function<bool(std::string)> push, std::function<void()> close) = 0;
  virtual void stop() = 0;
};

struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";  // "" sends no Content-Type
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (Allow, X-Console-Offset)
  std::shared_ptr<ChunkStream> stream;  // set: a chunked response; body ignored
};

// {"fault_message": message} with `status`.
ApiResponse fault(unsigned status, std::string_view message);
ApiResponse json_response(unsigned status, const nlohmann::json& body);
// 204, no body, no Content-Type.
ApiResponse no_content();

}  // namespace vmfork::api
