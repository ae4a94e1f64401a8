// JsonFields: strict request bodies, every error a 400 naming the field.
#include "vmm/api/http/json_fields.h"

#include <gtest/gtest.h>

namespace vmfork::api {
namespace {

const std::vector<std::string> kCreateFields = {"guest", "vcpus", "mem", "engine", "paused"};

ApiRequest with_body(std::string body) {
  ApiRequest request;
  request.method = boost::beast::http::verb::post;
  request.path = "/vms";
  request.body = std::move(body);
  return request;
}

// The message of the fault the fields answer with, or "" if none.
std::string error_of(const JsonFields& fields) {
  const auto response = fields.error_response();
  if (!response) return "";
  EXPECT_EQ(response->status, 400u);
  return nlohmann::json::parse(response->body).at("fault_message").get<std::string>();
}

TEST(JsonFields, ReadsTypedFields) {
  JsonFields fields = JsonFields::parse(
      with_body(R"({"guest": "/g.bin", "vcpus": 4, "mem": "64M", "paused": true})"), kCreateFields);
  EXPECT_EQ(fields.required_string("guest"), "/g.bin");
  EXPECT_EQ(fields.unsigned_integer("vcpus"), 4u);
  EXPECT_EQ(fields.boolean("paused"), true);
  ASSERT_NE(fields.raw("mem"), nullptr);
  EXPECT_EQ(*fields.raw("mem"), "64M");
  EXPECT_EQ(fields.string("engine"), std::nullopt);  // absent: the default
  EXPECT_FALSE(fields.failed());
  EXPECT_EQ(fields.error_response(), std::nullopt);
}

TEST(JsonFields, EmptyBodyReadsAsAnEmptyObject) {
  JsonFields fields = JsonFields::parse(with_body(""), {"count"});
  EXPECT_EQ(fields.unsigned_integer("count"), std::nullopt);
  EXPECT_EQ(error_of(fields), "");
}

TEST(JsonFields, NullReadsAsAbsent) {
  JsonFields fields = JsonFields::parse(with_body(R"({"engine": null})"), kCreateFields);
  EXPECT_EQ(fields.string("engine"), std::nullopt);
  EXPECT_EQ(error_of(fields), "");
}

TEST(JsonFields, BadJsonNamesTheByte) {
  JsonFields fields = JsonFields::parse(with_body(R"({"guest": x})"), kCreateFields);
  EXPECT_EQ(fields.string("guest"), std::nullopt);
  const std::string message = error_of(fields);
  EXPECT_TRUE(message.starts_with("bad JSON at byte 11: syntax error")) << message;
  EXPECT_EQ(message.find("json.exception"), std::string::npos) << message;
}

TEST(JsonFields, BodyMustBeAnObject) {
  for (const char* body : {"[1, 2]", "42", "\"text\"", "null"}) {
    JsonFields fields = JsonFields::parse(with_body(body), kCreateFields);
    EXPECT_EQ(error_of(fields), "the body must be a JSON object") << body;
  }
}

TEST(JsonFields, UnknownFieldListsTheKnownOnes) {
  JsonFields fields = JsonFields::parse(with_body(R"({"guest": "/g", "vcpu": 2})"), kCreateFields);
  EXPECT_EQ(error_of(fields), "unknown field 'vcpu' (known: guest, vcpus, mem, engine, paused)");
  // After the first error, accessors read nothing.
  EXPECT_EQ(fields.string("guest"), std::nullopt);
}

TEST(JsonFields, WrongTypeNamesFieldAndBothTypes) {
  struct Case {
    const char* body;
    std::function<void(JsonFields&)> read;
    const char* message;
  };
  const Case cases[] = {
      {R"({"vcpus": "2"})", [](JsonFields& f) { (void)f.unsigned_integer("vcpus"); },
       "field 'vcpus' must be an unsigned integer, not a string"},
      {R"({"vcpus": -2})", [](JsonFields& f) { (void)f.unsigned_integer("vcpus"); },
       "field 'vcpus' must be an unsigned integer, not a negative integer"},
      {R"({"vcpus": 1.5})", [](JsonFields& f) { (void)f.unsigned_integer("vcpus"); },
       "field 'vcpus' must be an unsigned integer, not a number with a fraction or exponent"},
      {R"({"guest": 7})", [](JsonFields& f) { (void)f.string("guest"); },
       "field 'guest' must be a string, not an unsigned integer"},
      {R"({"paused": "yes"})", [](JsonFields& f) { (void)f.boolean("paused"); },
       "field 'paused' must be a boolean, not a string"},
      {R"({"guest": ["a"]})", [](JsonFields& f) { (void)f.required_string("guest"); },
       "field 'guest' must be a string, not an array"},
  };
  for (const Case& c : cases) {
    JsonFields fields = JsonFields::parse(with_body(c.body), kCreateFields);
    c.read(fields);
    EXPECT_EQ(error_of(fields), c.message) << c.body;
  }
}

TEST(JsonFields, RequiredFieldMustBePresent) {
  JsonFields fields = JsonFields::parse(with_body(R"({"vcpus": 2})"), kCreateFields);
  EXPECT_EQ(fields.required_string("guest"), std::nullopt);
  EXPECT_EQ(error_of(fields), "field 'guest' is required");
}

TEST(JsonFields, KeepsOnlyTheFirstError) {
  JsonFields fields = JsonFields::parse(with_body(R"({"vcpus": "x"})"), kCreateFields);
  (void)fields.unsigned_integer("vcpus");
  (void)fields.required_string("guest");
  fields.fail("mem", "must be a size like 64M");
  EXPECT_EQ(error_of(fields), "field 'vcpus' must be an unsigned integer, not a string");
}

TEST(JsonFields, HandlerChecksRecordTheSameWay) {
  JsonFields fields = JsonFields::parse(with_body(R"({"mem": "64Q"})"), kCreateFields);
  ASSERT_NE(fields.raw("mem"), nullptr);
  fields.fail("mem", "must be a size like 64M, not '64Q'");
  EXPECT_EQ(error_of(fields), "field 'mem' must be a size like 64M, not '64Q'");
  EXPECT_EQ(fields.error_message(), "field 'mem' must be a size like 64M, not '64Q'");
}

}  // namespace
}  // namespace vmfork::api
