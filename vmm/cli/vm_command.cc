#include "vmm/cli/vm_command.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "vmm/api/client/fault.h"
#include "vmm/api/client/http_client.h"
#include "vmm/api/client/path_segment.h"
#include "vmm/cli/choice_arg.h"
#include "vmm/cli/count_arg.h"
#include "vmm/cli/line_splitter.h"
#include "vmm/cli/size_arg.h"
#include "vmm/cli/vm_output.h"
#include "vmm/cli/vm_session.h"

namespace vmfork::cli {

namespace {

using api::ClientResponse;
using api::HttpClient;
using api::Method;
using api::path_segment;
using nlohmann::json;

// What every subcommand takes.
struct ApiArgs {
  std::string socket;
  bool json = false;  // print the daemon's JSON as it came
};

// kDefault leaves the field out of the request: the daemon's default.
enum class ApiEngine : uint8_t { kDefault, kSoft, kKvm };
enum class SnapshotType : uint8_t { kDefault, kFull, kDiff };

struct VmArgs {
  ApiArgs api;
  std::string id;          // the VM of fork, pause, resume, snapshot, rm, console
  std::string path;        // the guest of create, the directory of snapshot and restore
  uint32_t vcpus = 0;      // 0: the daemon's default
  uint64_t mem_bytes = 0;  // 0: the daemon's default
  ApiEngine engine = ApiEngine::kDefault;
  bool paused = false;
  uint32_t count = 1;  // fork --count, restore --clones
  SnapshotType type = SnapshotType::kDefault;
  bool follow = false;
  uint64_t offset = 0;
};

// The daemon resolves paths against its own working directory, which is
// not the user's: a relative path is made absolute here, where it was meant.
std::string absolute(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

std::string vm_target(const std::string& id) {
  return "/vms/" + path_segment(id);
}

// One request, its 4xx/5xx turned into the daemon's fault.
Result<ClientResponse> call(const ApiArgs& api, Method method, const std::string& target,
                            std::optional<json> body = std::nullopt) {
  HttpClient client(api.socket);
  Result<ClientResponse> response = client.request(method, target, body);
  if (!response) return response.error();
  if (!response->success()) return api::fault_error(response->status, response->body);
  return response;
}

// --json: the daemon's body as it came (nothing for a 204); otherwise what
// `human` makes of it.
Result<int> print(const ApiArgs& api, Method method, const std::string& target,
                  const ClientResponse& response,
                  const std::function<std::string(const json&)>& human) {
  if (api.json) {
    fmt::print("{}", response.body);
    if (!response.body.empty() && response.body.back() != '\n') fmt::print("\n");
    return 0;
  }
  const json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("the daemon's response to {} {} is not JSON: {}",
                                  to_string(method), target, response.body));
  }
  fmt::print("{}", human(body));
  return 0;
}

// A request answered with JSON, printed.
Result<int> call_and_print(const ApiArgs& api, Method method, const std::string& target,
                           std::optional<json> body,
                           const std::function<std::string(const json&)>& human) {
  Result<ClientResponse> response = call(api, method, target, std::move(body));
  if (!response) return response.error();
  return print(api, method, target, *response, human);
}

// A request answered with 204: `done` for people, nothing with --json.
Result<int> call_no_content(const ApiArgs& api, Method method, const std::string& target,
                            std::optional<json> body, const std::string& done) {
  Result<ClientResponse> response = call(api, method, target, std::move(body));
  if (!response) return response.error();
  if (!api.json) fmt::print("{}\n", done);
  return 0;
}

// Bytes to stdout as they come (console, events): flushed at once so that a
// follower sees them; false when stdout is gone (`| head`), to stop reading.
bool write_out(std::string_view bytes) {
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size();
  return written && std::fflush(stdout) == 0;
}

Result<int> ls(const VmArgs& args) {
  return call_and_print(args.api, Method::kGet, "/vms", std::nullopt, format_vm_table);
}

Result<int> create(const VmArgs& args) {
  json body{{"guest", absolute(args.path)}};
  if (args.vcpus != 0) body["vcpus"] = args.vcpus;
  if (args.mem_bytes != 0) body["mem"] = args.mem_bytes;
  if (args.engine != ApiEngine::kDefault) {
    body["engine"] = args.engine == ApiEngine::kKvm ? "kvm" : "soft";
  }
  if (args.paused) body["paused"] = true;
  return call_and_print(args.api, Method::kPost, "/vms", body, [](const json& created) {
    return created.value("id", std::string("?")) + "\n";
  });
}

Result<int> fork(const VmArgs& args) {
  return call_and_print(args.api, Method::kPost, vm_target(args.id) + "/fork",
                        json{{"count", args.count}}, format_clones);
}

Result<int> set_state(const VmArgs& args, const char* state, const char* done) {
  return call_no_content(args.api, Method::kPatch, vm_target(args.id), json{{"state", state}},
                         fmt::format("{}: {}", args.id, done));
}

Result<int> snapshot(const VmArgs& args) {
  json body{{"path", absolute(args.path)}};
  if (args.type != SnapshotType::kDefault) {
    body["type"] = args.type == SnapshotType::kDiff ? "Diff" : "Full";
  }
  return call_and_print(args.api, Method::kPut, vm_target(args.id) + "/snapshot", body,
                        format_snapshot);
}

Result<int> restore(const VmArgs& args) {
  json body{{"path", absolute(args.path)}, {"clones", args.count}, {"resume", !args.paused}};
  if (args.engine != ApiEngine::kDefault) {
    body["engine"] = args.engine == ApiEngine::kKvm ? "kvm" : "soft";
  }
  return call_and_print(args.api, Method::kPost, "/snapshots/load", body, format_clones);
}

Result<int> rm(const VmArgs& args) {
  return call_no_content(args.api, Method::kDelete, vm_target(args.id), std::nullopt,
                         args.id + ": removed");
}

Result<int> console(const VmArgs& args) {
  const std::string target = vm_target(args.id) + "/console";
  if (args.follow) {
    HttpClient client(args.api.socket);
    const std::string query =
        args.offset != 0 ? fmt::format("?follow=true&offset={}", args.offset) : "?follow=true";
    Result<void> streamed = client.stream(Method::kGet, target + query, write_out);
    if (!streamed) return streamed.error();
    return 0;
  }
  const std::string query = fmt::format("?offset={}", args.offset);
  Result<ClientResponse> response = call(args.api, Method::kGet, target + query);
  if (!response) return response.error();
  if (args.api.json) {
    // The console is text/plain: --json wraps it with the offset to pass
    // back next time (X-Console-Offset).
    json wrapped{{"output", response->body}, {"offset", nullptr}};
    if (std::optional<std::string> next = response->header("X-Console-Offset")) {
      wrapped["offset"] = json::parse(*next, nullptr, /*allow_exceptions=*/false);
      if (wrapped["offset"].is_discarded()) wrapped["offset"] = *next;
    }
    fmt::print("{}\n", wrapped.dump());
    return 0;
  }
  write_out(response->body);
  return 0;
}

Result<int> events(const VmArgs& args) {
  HttpClient client(args.api.socket);
  if (args.api.json) {
    Result<void> streamed = client.stream(Method::kGet, "/events", write_out);
    if (!streamed) return streamed.error();
    return 0;
  }
  bool out = true;
  LineSplitter lines([&out](std::string_view line) {
    if (!out || line.empty()) return;
    const json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A line that is not JSON is shown as it came rather than lost.
    out = write_out(event.is_discarded() ? std::string(line) + "\n" : format_event(event));
  });
  Result<void> streamed = client.stream(Method::kGet, "/events", [&](std::string_view bytes) {
    lines.feed(bytes);
    return out;
  });
  lines.finish();
  if (!streamed) return streamed.error();
  return 0;
}

void add_api_options(CLI::App& command, ApiArgs& api) {
  command
      .add_option("--api-sock", api.socket,
                  "The UNIX socket of the daemon, as given to `vmfork serve --api-sock PATH` "
                  "(required: there is no default)")
      ->required()
      ->type_name("PATH");
  command.add_flag("--json", api.json,
                   "Print the daemon's JSON response as it came instead of a table");
}

void add_engine_option(CLI::App& command, ApiEngine& engine) {
  command
      .add_option("--engine", engine,
                  "soft (the x86-64 interpreter) or kvm (default: the daemon's engine)")
      ->transform(
          choice_transform<ApiEngine>({{"soft", ApiEngine::kSoft}, {"kvm", ApiEngine::kKvm}}))
      ->type_name("soft|kvm");
}

// A subcommand sharing `args`, running `body` once the command line parsed.
CLI::App* add_subcommand(CLI::App& vm, std::function<int()>& chosen,
                         const std::shared_ptr<VmArgs>& args, const char* name,
                         const char* description, Result<int> (*body)(const VmArgs&)) {
  CLI::App* command = vm.add_subcommand(name, description);
  add_api_options(*command, args->api);
  command->callback([args, &chosen, body] {
    chosen = [args, body] { return run_reporting_errors([args, body] { return body(*args); }); };
  });
  return command;
}

void add_id(CLI::App& command, VmArgs& args) {
  command.add_option("id", args.id, "The VM's id (vm0, vm0.1 ...; see `vmfork vm ls`)")->required();
}

}  // namespace

void add_vm_command(CLI::App& app, std::function<int()>& chosen) {
  CLI::App* vm = app.add_subcommand(
      "vm",
      "Manage the VMs of a running `vmfork serve` through its API socket (--api-sock PATH, "
      "required by every subcommand). Tables for people, or the daemon's JSON with --json; a "
      "request the daemon refuses prints its reason and the HTTP status, exit status 1.");
  vm->require_subcommand(1);
  // One set of arguments: only one subcommand runs.
  auto args = std::make_shared<VmArgs>();

  add_subcommand(*vm, chosen, args, "ls", "List the VMs: ID STATE ENGINE VCPUS MEM PARENT STATUS",
                 ls);

  CLI::App* create_command = add_subcommand(*vm, chosen, args, "create",
                                            "Create a VM running GUEST; prints its id", create);
  create_command->add_option("guest", args->path, "The guest binary (a path on the daemon's host)")
      ->required();
  create_command->add_option("--vcpus", args->vcpus, "vCPUs, 1 to 64 (default: the daemon's, 1)")
      ->type_name("N")
      ->check(count_in_range(1, 64));
  create_command
      ->add_option("--mem", args->mem_bytes, "Guest RAM: 64M, 1G ... (default: the daemon's)")
      ->transform(size_transform())
      ->type_name("SIZE");
  add_engine_option(*create_command, args->engine);
  create_command->add_flag("--paused", args->paused,
                           "Create it paused (`vmfork vm resume` starts it)");

  CLI::App* fork_command = add_subcommand(
      *vm, chosen, args, "fork",
      "Fork a VM into --count clones; prints each clone's id and latency in us", fork);
  add_id(*fork_command, *args);
  fork_command->add_option("--count", args->count, "Clones to make, 1 to 1024 (default: 1)")
      ->type_name("N")
      ->check(count_in_range(1, 1024));

  add_id(*add_subcommand(*vm, chosen, args, "pause", "Pause a running VM",
                         [](const VmArgs& a) { return set_state(a, "Paused", "paused"); }),
         *args);
  add_id(*add_subcommand(*vm, chosen, args, "resume", "Resume a paused VM",
                         [](const VmArgs& a) { return set_state(a, "Resumed", "resumed"); }),
         *args);

  CLI::App* snapshot_command =
      add_subcommand(*vm, chosen, args, "snapshot",
                     "Snapshot a VM into DIR (a path on the daemon's host)", snapshot);
  add_id(*snapshot_command, *args);
  snapshot_command->add_option("dir", args->path, "The snapshot directory to write")->required();
  snapshot_command
      ->add_option("--type", args->type,
                   "Full, or Diff (only the pages changed since the VM's parent snapshot) "
                   "(default: the daemon's)")
      ->transform(choice_transform<SnapshotType>(
          {{"full", SnapshotType::kFull}, {"diff", SnapshotType::kDiff}}))
      ->type_name("Full|Diff");

  CLI::App* restore_command = add_subcommand(
      *vm, chosen, args, "restore",
      "Start --clones N clones of snapshot DIR; prints each clone's id and latency in us", restore);
  restore_command->add_option("dir", args->path, "The snapshot directory (on the daemon's host)")
      ->required();
  restore_command->add_option("--clones", args->count, "Clones to start, 1 to 1024 (default: 1)")
      ->type_name("N")
      ->check(count_in_range(1, 1024));
  restore_command->add_flag("--paused", args->paused,
                            "Leave the clones paused (`vmfork vm resume` starts each)");
  add_engine_option(*restore_command, args->engine);

  add_id(*add_subcommand(*vm, chosen, args, "rm", "Stop a VM if it runs, and forget it", rm),
         *args);

  CLI::App* console_command = add_subcommand(
      *vm, chosen, args, "console",
      "Print what a VM wrote to its console; with --follow, go on until the VM ends", console);
  add_id(*console_command, *args);
  console_command->add_flag("--follow", args->follow,
                            "Keep printing what the VM writes until it ends (Ctrl-C leaves)");
  console_command
      ->add_option("--offset", args->offset,
                   "Start at this byte of the output (--json prints the offset to pass next "
                   "time) (default: 0)")
      ->type_name("N");

  add_subcommand(*vm, chosen, args, "events",
                 "Print the daemon's events (created, forked, exited ...) as they happen, until "
                 "the daemon stops (Ctrl-C leaves); --json prints them as NDJSON",
                 events);
}

}  // namespace vmfork::cli
