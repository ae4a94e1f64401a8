#include "vmm/api/http/http_message.h"

namespace vmfork::api {

ApiResponse fault(unsigned status, std::string_view message) {
  return json_response(status, nlohmann::json{{"fault_message", message}});
}

ApiResponse json_response(unsigned status, const nlohmann::json& body) {
  ApiResponse response;
  response.status = status;
  // Replace, not throw, on invalid UTF-8: a message may quote a path or a
  // request's bytes, and an error must never become a crash.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

ApiResponse no_content() {
  ApiResponse response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

}  // namespace vmfork::api
