// `vmfork vm ...` run as a user runs it, against the fake daemon: each
// subcommand sends its one request of the contract, prints the table or
// the daemon's JSON, and a refusal or a missing daemon is one line on
// stderr with exit status 1.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/api/client/fake_server.h"

namespace vmfork {
namespace {

using nlohmann::json;
using testing::FakePeer;
using testing::FakeRequest;
using testing::FakeServer;
using Then = FakeServer::Then;
namespace http = boost::beast::http;

struct ProcessRun {
  int exit_status = -1;
  std::string out;
  std::string err;
};

// Runs vmfork with `args` (shell syntax): stdout through a pipe, stderr
// into a file.
ProcessRun run_vmfork(const std::string& args) {
  testing::TempDir dir;
  const std::filesystem::path err = dir / "stderr";
  const std::string command =
      std::string("'") + VMFORK_BINARY + "' " + args + " 2>'" + err.string() + "'";
  ProcessRun run;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    run.out.append(buffer.data(), got);
  const int status = pclose(pipe);
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream file(err);
  std::stringstream text;
  text << file.rdbuf();
  run.err = text.str();
  return run;
}

// A daemon that answers every request with `status` and `body`.
FakeServer::Handler answer(unsigned status, std::string body) {
  return [status, body](const FakeRequest&, FakePeer& peer) {
    if (status == 204) {
      peer.write("HTTP/1.1 204 No Content\r\n\r\n");
    } else {
      peer.respond(status, body);
    }
    return Then::kKeepOpen;
  };
}

json body_of(const FakeRequest& request) {
  return json::parse(request.body());
}

constexpr const char* kTwoVms = R"({"vms": [
    {"id": "vm0", "state": "Running", "engine": "soft", "vcpus": 1, "mem_bytes": 67108864,
     "parent": null, "clone_id": null, "status": null, "error": null},
    {"id": "vm0.1", "state": "Paused", "engine": "soft", "vcpus": 1, "mem_bytes": 67108864,
     "parent": "vm0", "clone_id": 1, "status": null, "error": null}]})";

TEST(VmCommand, LsPrintsTheVmTable) {
  FakeServer server(answer(200, kTwoVms));
  const ProcessRun run = run_vmfork("vm ls --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out,
            "ID     STATE    ENGINE  VCPUS  MEM     PARENT  STATUS\n"
            "vm0    Running  soft    1      64 MiB  -       -\n"
            "vm0.1  Paused   soft    1      64 MiB  vm0     -\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method(), http::verb::get);
  EXPECT_EQ(server.requests()[0].target(), "/vms");
}

TEST(VmCommand, JsonPrintsTheDaemonsBodyAsItCame) {
  FakeServer server(answer(200, kTwoVms));
  const ProcessRun run = run_vmfork("vm ls --json --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(json::parse(run.out), json::parse(kTwoVms));
}

TEST(VmCommand, CreateSendsTheGivenFieldsAndAnAbsoluteGuestPath) {
  FakeServer server(answer(201, R"({"id": "vm4"})"));
  const ProcessRun run = run_vmfork(
      "vm create guests/hello --vcpus 2 --mem 64M --engine kvm "
      "--paused --api-sock " +
      server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out, "vm4\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method(), http::verb::post);
  EXPECT_EQ(server.requests()[0].target(), "/vms");
  EXPECT_EQ(body_of(server.requests()[0]),
            (json{{"guest", (std::filesystem::current_path() / "guests/hello").string()},
                  {"vcpus", 2},
                  {"mem", 67108864},
                  {"engine", "kvm"},
                  {"paused", true}}));
}

TEST(VmCommand, CreateLeavesOutWhatWasNotGiven) {
  FakeServer server(answer(201, R"({"id": "vm0"})"));
  const ProcessRun run = run_vmfork("vm create /g --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(body_of(server.requests()[0]), (json{{"guest", "/g"}}));
}

TEST(VmCommand, ForkSendsTheCountAndPrintsEachClonesLatency) {
  FakeServer server(answer(
      200,
      R"({"clones": [{"id": "vm0.1", "latency_ns": 52000}, {"id": "vm0.2", "latency_ns": null}]})"));
  const ProcessRun run = run_vmfork("vm fork vm0 --count 2 --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out, "CLONE  LATENCY\nvm0.1  52.0 us\nvm0.2  -\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target(), "/vms/vm0/fork");
  EXPECT_EQ(body_of(server.requests()[0]), (json{{"count", 2}}));
}

TEST(VmCommand, EachSubcommandSendsItsRequestOfTheContract) {
  struct Case {
    std::string args;
    http::verb method;
    std::string target;
    json body;  // null: none
  };
  const std::vector<Case> cases{
      {"vm pause vm0", http::verb::patch, "/vms/vm0", {{"state", "Paused"}}},
      {"vm resume vm0", http::verb::patch, "/vms/vm0", {{"state", "Resumed"}}},
      {"vm rm vm0.1", http::verb::delete_, "/vms/vm0.1", nullptr},
      {"vm snapshot vm0 /s --type diff",
       http::verb::put,
       "/vms/vm0/snapshot",
       {{"path", "/s"}, {"type", "Diff"}}},
      {"vm restore /s --clones 3 --paused",
       http::verb::post,
       "/snapshots/load",
       {{"path", "/s"}, {"clones", 3}, {"resume", false}}},
      {"vm console vm0 --offset 10", http::verb::get, "/vms/vm0/console?offset=10", nullptr},
  };
  for (const Case& c : cases) {
    FakeServer server(answer(204, ""));
    const ProcessRun run = run_vmfork(c.args + " --json --api-sock " + server.path());
    EXPECT_EQ(run.exit_status, 0) << c.args << ": " << run.err;
    ASSERT_EQ(server.requests().size(), 1u) << c.args;
    const FakeRequest request = server.requests()[0];  // a copy: requests() returns one
    EXPECT_EQ(request.method(), c.method) << c.args;
    EXPECT_EQ(request.target(), c.target) << c.args;
    if (c.body.is_null()) {
      EXPECT_EQ(request.body(), "") << c.args;
    } else {
      EXPECT_EQ(body_of(request), c.body) << c.args;
    }
  }
}

TEST(VmCommand, ADaemonsRefusalIsItsFaultMessageAndExitStatus1) {
  FakeServer server(answer(409, R"({"fault_message": "vm0 is already paused"})"));
  const ProcessRun run = run_vmfork("vm pause vm0 --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "vmfork: vm0 is already paused (HTTP 409)\n");
}

TEST(VmCommand, NoDaemonSaysWhichCommandWouldServeTheSocket) {
  testing::TempDir dir;
  const std::string path = (dir / "api.sock").string();
  const ProcessRun run = run_vmfork("vm ls --api-sock " + path);
  EXPECT_EQ(run.exit_status, 1);
  EXPECT_EQ(run.err, "vmfork: cannot connect to " + path +
                         ": no such file (is `vmfork serve --api-sock " + path + "` running?)\n");
}

TEST(VmCommand, ApiSockIsRequired) {
  const ProcessRun run = run_vmfork("vm ls");
  EXPECT_NE(run.exit_status, 0);
  EXPECT_NE(run.err.find("--api-sock is required"), std::string::npos) << run.err;
}

TEST(VmCommand, EventsArePrintedALineEachAsTheyCome) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.write(testing::chunked_head(200, "application/x-ndjson"));
    peer.write(testing::chunk(R"({"seq":1,"time_ns":5,"event":"created","vm":"vm0"})"
                              "\n"
                              R"({"seq":2,"time_ns":6,"event":"for)"));
    peer.write(testing::chunk(R"(ked","vm":"vm0","clones":["vm0.1"]})"
                              "\n"));
    peer.write(testing::kLastChunk);
    return Then::kKeepOpen;
  });
  const ProcessRun run = run_vmfork("vm events --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out, "#1 created vm0\n#2 forked vm0 clones=[\"vm0.1\"]\n");
}

TEST(VmCommand, ConsoleFollowPrintsTheBytesAsTheyCame) {
  FakeServer server([](const FakeRequest&, FakePeer& peer) {
    peer.write(testing::chunked_head(200, "text/plain"));
    peer.write(testing::chunk("hello, "));
    peer.write(testing::chunk("world\n"));
    peer.write(testing::kLastChunk);
    return Then::kKeepOpen;
  });
  const ProcessRun run = run_vmfork("vm console vm0 --follow --api-sock " + server.path());
  EXPECT_EQ(run.exit_status, 0) << run.err;
  EXPECT_EQ(run.out, "hello, world\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target(), "/vms/vm0/console?follow=true");
}

}  // namespace
}  // namespace vmfork
