// Router: patterns with parameters, 404 naming the path, 405 with Allow.
#include "vmm/api/http/router.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vmfork::api {
namespace {

using boost::beast::http::verb;

ApiRequest request(verb method, std::string path) {
  ApiRequest result;
  result.method = method;
  result.path = std::move(path);
  return result;
}

std::string fault_message(const ApiResponse& response) {
  return nlohmann::json::parse(response.body).at("fault_message").get<std::string>();
}

std::string header(const ApiResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "(none)";
}

Router vm_router() {
  Router router;
  router.add(verb::get, "/vms", [](const ApiRequest&, const Router::Params&) {
    return json_response(200, {{"route", "list"}});
  });
  router.add(verb::post, "/vms", [](const ApiRequest&, const Router::Params&) {
    return json_response(201, {{"route", "create"}});
  });
  router.add(verb::post, "/vms/{id}/fork", [](const ApiRequest&, const Router::Params& params) {
    return json_response(200, {{"route", "fork"}, {"id", params.at("id")}});
  });
  router.add(verb::get, "/vms/{id}", [](const ApiRequest&, const Router::Params& params) {
    return json_response(200, {{"route", "get"}, {"id", params.at("id")}});
  });
  router.add(verb::delete_, "/vms/{id}",
             [](const ApiRequest&, const Router::Params&) { return no_content(); });
  return router;
}

TEST(Router, CallsTheHandlerOfTheMethodAndPath) {
  const Router router = vm_router();
  EXPECT_EQ(nlohmann::json::parse(router.route(request(verb::get, "/vms")).body)["route"], "list");
  const ApiResponse created = router.route(request(verb::post, "/vms"));
  EXPECT_EQ(created.status, 201u);
  EXPECT_EQ(nlohmann::json::parse(created.body)["route"], "create");
  EXPECT_EQ(router.route(request(verb::delete_, "/vms/vm0")).status, 204u);
}

TEST(Router, PassesParametersByName) {
  const Router router = vm_router();
  const auto body =
      nlohmann::json::parse(router.route(request(verb::post, "/vms/vm0.1/fork")).body);
  EXPECT_EQ(body["route"], "fork");
  EXPECT_EQ(body["id"], "vm0.1");
}

TEST(Router, UnknownPathIs404NamingThePath) {
  const Router router = vm_router();
  for (const char* path : {"/nope", "/vms/vm0/fork/more", "/vms/", "/vms//fork", "/"}) {
    const ApiResponse response = router.route(request(verb::get, path));
    EXPECT_EQ(response.status, 404u) << path;
    EXPECT_EQ(response.content_type, "application/json");
    EXPECT_EQ(fault_message(response), std::string("no such path: ") + path);
  }
}

TEST(Router, WrongMethodIs405ListingTheAllowedOnes) {
  const Router router = vm_router();
  const ApiResponse on_vms = router.route(request(verb::delete_, "/vms"));
  EXPECT_EQ(on_vms.status, 405u);
  EXPECT_EQ(header(on_vms, "Allow"), "GET, POST");
  EXPECT_EQ(fault_message(on_vms), "DELETE is not allowed on /vms (allowed: GET, POST)");

  const ApiResponse on_vm = router.route(request(verb::patch, "/vms/vm3"));
  EXPECT_EQ(on_vm.status, 405u);
  EXPECT_EQ(header(on_vm, "Allow"), "GET, DELETE");
}

TEST(Router, FirstMatchingPatternWins) {
  Router router;
  router.add(verb::get, "/vms/all", [](const ApiRequest&, const Router::Params&) {
    return json_response(200, "literal");
  });
  router.add(verb::get, "/vms/{id}", [](const ApiRequest&, const Router::Params&) {
    return json_response(200, "parameter");
  });
  EXPECT_EQ(router.route(request(verb::get, "/vms/all")).body, "\"literal\"");
  EXPECT_EQ(router.route(request(verb::get, "/vms/vm0")).body, "\"parameter\"");
}

TEST(Faults, HaveTheFirecrackerShape) {
  const ApiResponse response = fault(409, "vm0 is already paused");
  EXPECT_EQ(response.status, 409u);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(response.body),
            (nlohmann::json{{"fault_message", "vm0 is already paused"}}));
  EXPECT_EQ(no_content().status, 204u);
  EXPECT_TRUE(no_content().content_type.empty());
}

}  // namespace
}  // namespace vmfork::api
