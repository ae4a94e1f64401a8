// Maps (method, path) to a handler. Patterns are paths whose segments may be
// parameters: "/vms/{id}/fork" matches "/vms/vm0.1/fork" with id = "vm0.1".
// A path no pattern matches is a 404 naming the path; a path some pattern
// matches, but not with this method, is a 405 whose Allow header lists the
// methods that path has (RFC 9110 section 15.5.6 requires it).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "vmm/api/http/http_message.h"

namespace vmfork::api {

class Router {
 public:
  using Params = std::map<std::string, std::string>;
  using Handler = std::function<ApiResponse(const ApiRequest&, const Params&)>;

  // Routes are tried in the order they were added; the first match wins.
  void add(boost::beast::http::verb method, std::string pattern, Handler handler);
  ApiResponse route(const ApiRequest& request) const;

 private:
  struct Route {
    boost::beast::http::verb method;
    std::vector<std::string> segments;  // "{id}" is a parameter
    Handler handler;
  };
  static bool match(const Route& route, const std::vector<std::string>& segments, Params* params);

  std::vector<Route> routes_;
};

}  // namespace vmfork::api
