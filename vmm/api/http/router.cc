#include "vmm/api/http/router.h"

#include <algorithm>
#include <string_view>

namespace vmfork::api {
namespace {

// "/vms/vm0/fork" -> {"vms", "vm0", "fork"}; "/" -> {""}. Empty segments
// stay, so "/vms/" does not match "/vms": a path has one spelling.
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segments;
  if (path.starts_with('/')) path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    segments.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return segments;
    path.remove_prefix(slash + 1);
  }
}

bool is_parameter(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::add(boost::beast::http::verb method, std::string pattern, Handler handler) {
  routes_.push_back({method, split_path(pattern), std::move(handler)});
}

bool Router::match(const Route& route, const std::vector<std::string>& segments, Params* params) {
  if (route.segments.size() != segments.size()) return false;
  Params found;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& want = route.segments[i];
    if (is_parameter(want)) {
      if (segments[i].empty()) return false;  // "/vms//fork" names no VM
      found[want.substr(1, want.size() - 2)] = segments[i];
    } else if (want != segments[i]) {
      return false;
    }
  }
  *params = std::move(found);
  return true;
}

ApiResponse Router::route(const ApiRequest& request) const {
  const std::vector<std::string> segments = split_path(request.path);
  std::vector<std::string_view> allowed;
  for (const Route& candidate : routes_) {
    Params params;
    if (!match(candidate, segments, &params)) continue;
    if (candidate.method == request.method) return candidate.handler(request, params);
    const auto verb = boost::beast::http::to_string(candidate.method);  // boost::string_view
    const std::string_view name(verb.data(), verb.size());
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) allowed.push_back(name);
  }
  if (allowed.empty()) return fault(404, "no such path: " + request.path);
  std::string allow;
  for (const std::string_view name : allowed) {
    if (!allow.empty()) allow += ", ";
    allow += name;
  }
  ApiResponse response =
      fault(405, std::string(boost::beast::http::to_string(request.method)) +
                     " is not allowed on " + request.path + " (allowed: " + allow + ")");
  response.headers.emplace_back("Allow", allow);
  return response;
}

}  // namespace vmfork::api
