// The request target split into a decoded path and query, and which body
// types the server reads.
#include "vmm/api/http/request_target.h"

#include <gtest/gtest.h>

#include "vmm/api/http/content_type.h"

namespace vmfork::api {
namespace {

TEST(RequestTarget, SplitsPathAndQuery) {
  auto target = parse_target("/vms/vm0/console?offset=10&follow&x=a%20b+c");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->path, "/vms/vm0/console");
  EXPECT_EQ(target->query.at("offset"), "10");
  EXPECT_EQ(target->query.at("follow"), "");
  EXPECT_EQ(target->query.at("x"), "a b c");
  EXPECT_EQ(target->query.size(), 3u);
}

TEST(RequestTarget, DecodesThePath) {
  auto target = parse_target("/snapshots/a%2Bb+c");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->path, "/snapshots/a+b+c");  // '+' is a space only in a query
  EXPECT_TRUE(target->query.empty());
}

TEST(RequestTarget, RefusesBadEscapesAndAbsoluteForms) {
  for (const char* bad : {"/vms/%zz", "/vms/%4", "/?a=%", "http://host/vms", "*"}) {
    auto target = parse_target(bad);
    EXPECT_FALSE(target.ok()) << bad;
  }
  EXPECT_EQ(parse_target("/vms/%4").error().message, "bad percent-encoding at byte 5 of '/vms/%4'");
}

TEST(ContentType, AcceptsJsonNoneAndCurlsFormType) {
  EXPECT_TRUE(is_accepted_body_type(""));
  EXPECT_TRUE(is_accepted_body_type("application/json"));
  EXPECT_TRUE(is_accepted_body_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_accepted_body_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_accepted_body_type("text/plain"));
  EXPECT_FALSE(is_accepted_body_type("multipart/form-data; boundary=x"));
}

}  // namespace
}  // namespace vmfork::api
