#include "vmm/api/vm_service.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "vmm/api/http/json_fields.h"
#include "vmm/api/journal_stream.h"
#include "vmm/api/metrics.h"
#include "vmm/cli/size_arg.h"
#include "vmm/clock.h"
#include "vmm/loader/read_file.h"
#include "vmm/snapshot/open_snapshot.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/restore.h"

namespace vmfork::api {

namespace {

using boost::beast::http::verb;

constexpr uint64_t kMaxVcpus = 64;
constexpr uint64_t kMaxCount = 1024;
// How long fork and load wait for their clones' first instructions before
// answering without them: long enough for a busy host, short enough that a
// clone that never runs does not hold the request.
constexpr std::chrono::milliseconds kLatencyPatience{10000};
// The most a console read returns at once.
constexpr size_t kConsoleRead = 1 << 20;

// An error of the monitor or a VM as the API's status.
unsigned status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kWrongState:
      return 409;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kInvalidArgument:
      return 400;
    default:
      return 500;
  }
}

ApiResponse error_response(const Error& error) {
  return fault(status_for(error.code), error.message);
}

std::optional<Engine> parse_engine(const std::string& name) {
  if (name == "soft") return Engine::kSoft;
  if (name == "kvm") return Engine::kKvm;
  return std::nullopt;
}

// "engine": "soft" | "kvm", or the daemon's.
std::optional<Engine> engine_field(JsonFields& fields, Engine fallback) {
  const std::optional<std::string> name = fields.string("engine");
  if (!name) return fallback;
  std::optional<Engine> engine = parse_engine(*name);
  if (!engine) fields.fail("engine", fmt::format("must be \"soft\" or \"kvm\", not \"{}\"", *name));
  return engine;
}

// A count field within [1, max].
std::optional<uint32_t> count_field(JsonFields& fields, const char* name, uint64_t fallback,
                                    uint64_t max) {
  const uint64_t value = fields.unsigned_integer(name).value_or(fallback);
  if (value < 1 || value > max) {
    fields.fail(name, fmt::format("must be from 1 to {}, not {}", max, value));
    return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

// "path": an absolute directory (the daemon's working directory is not the client's).
std::optional<std::filesystem::path> path_field(JsonFields& fields, const char* name) {
  std::optional<std::string> path = fields.required_string(name);
  if (!path) return std::nullopt;
  if (path->empty() || path->front() != '/') {
    fields.fail(name, fmt::format("must be an absolute path, not \"{}\"", *path));
    return std::nullopt;
  }
  return std::filesystem::path(*path);
}

}  // namespace

VmService::VmService(Monitor& monitor, VmTable& table, ServiceOptions options)
    : monitor_(monitor), table_(table), options_(std::move(options)) {
  router_.add(verb::get, "/", [this](const ApiRequest&, const Router::Params&) { return root(); });
  router_.add(verb::post, "/vms",
              [this](const ApiRequest& r, const Router::Params&) { return create_vm(r); });
  router_.add(verb::get, "/vms",
              [this](const ApiRequest&, const Router::Params&) { return list_vms(); });
  router_.add(verb::get, "/vms/{id}",
              [this](const ApiRequest&, const Router::Params& p) { return get_vm(p.at("id")); });
  router_.add(verb::patch, "/vms/{id}", [this](const ApiRequest& r, const Router::Params& p) {
    return patch_vm(r, p.at("id"));
  });
  router_.add(verb::delete_, "/vms/{id}",
              [this](const ApiRequest&, const Router::Params& p) { return delete_vm(p.at("id")); });
  router_.add(verb::post, "/vms/{id}/fork", [this](const ApiRequest& r, const Router::Params& p) {
    return fork_vm(r, p.at("id"));
  });
  router_.add(
      verb::put, "/vms/{id}/snapshot",
      [this](const ApiRequest& r, const Router::Params& p) { return snapshot_vm(r, p.at("id")); });
  router_.add(verb::get, "/vms/{id}/console", [this](const ApiRequest& r, const Router::Params& p) {
    return console(r, p.at("id"));
  });
  router_.add(verb::post, "/snapshots/load",
              [this](const ApiRequest& r, const Router::Params&) { return load_snapshot(r); });
  router_.add(verb::get, "/events",
              [this](const ApiRequest& r, const Router::Params&) { return events(r); });
  router_.add(verb::get, "/metrics",
              [this](const ApiRequest& r, const Router::Params&) { return metrics(r); });
}

void VmService::stopping() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
}

std::string VmService::next_vm_id() {
  std::lock_guard lock(mutex_);
  return fmt::format("vm{}", next_id_++);
}

ApiResponse VmService::root() const {
  return json_response(200, {{"name", "vmfork"},
                             {"version", options_.version},
                             {"engine", to_string(options_.engine)},
                             {"pool_bytes", options_.pool_bytes}});
}

ApiResponse VmService::create_vm(const ApiRequest& request) {
  JsonFields fields = JsonFields::parse(
      request, {"guest", "kernel", "initrd", "cmdline", "vcpus", "mem", "engine", "paused"});
  const std::optional<std::string> guest = fields.string("guest");
  const std::optional<std::string> kernel = fields.string("kernel");
  const std::optional<std::string> initrd = fields.string("initrd");
  const std::optional<std::string> cmdline = fields.string("cmdline");
  const std::optional<uint32_t> vcpus = count_field(fields, "vcpus", 1, kMaxVcpus);
  uint64_t ram_bytes = uint64_t{256} << 20;
  if (const nlohmann::json* mem = fields.raw("mem")) {
    Result<uint64_t> size = mem->is_string() ? cli::parse_size(mem->get<std::string>())
                            : mem->is_number_unsigned()
                                ? Result<uint64_t>(mem->get<uint64_t>())
                                : Result<uint64_t>(make_error(ErrorCode::kInvalidArgument,
                                                              "must be a size like \"64M\""));
    if (size) {
      ram_bytes = *size;
    } else {
      fields.fail("mem", size.error().message);
    }
  }
  const std::optional<Engine> engine = engine_field(fields, options_.engine);
  const bool paused = fields.boolean("paused").value_or(false);
  if (std::optional<ApiResponse> bad = fields.error_response()) return std::move(*bad);
  if (guest.has_value() == kernel.has_value()) {
    return fault(400,
                 "exactly one of the fields 'guest' (a guest ELF) and 'kernel' (Linux) is "
                 "required");
  }
  if (guest && (initrd || cmdline)) {
    return fault(400, "fields 'initrd' and 'cmdline' go with 'kernel', not 'guest'");
  }
  for (const auto& [name, path] :
       {std::pair{"guest", guest}, std::pair{"kernel", kernel}, std::pair{"initrd", initrd}}) {
    if (path && (path->empty() || path->front() != '/')) {
      return fault(400,
                   fmt::format("field '{}' must be an absolute path, not \"{}\"", name, *path));
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fault(503, "the daemon is stopping");
  }
  const std::string id = next_vm_id();
  Result<std::unique_ptr<Vm>> vm =
      guest ? boot_guest(id, *guest, *engine, ram_bytes, *vcpus)
            : boot_kernel(id, *kernel, initrd, cmdline.value_or(std::string(kDefaultLinuxCmdline)),
                          *engine, ram_bytes, *vcpus);
  if (!vm) {
    // A bad file or size is the request's fault; a host that cannot make the VM is not.
    const unsigned status = vm.error().code == ErrorCode::kInvalidArgument ? 400 : 500;
    return fault(status, vm.error().message);
  }
  if (paused) {
    table_.hold(std::move(*vm), "created");
  } else if (Result<void> launched = monitor_.launch(std::move(*vm)); !launched) {
    return fault(500, launched.error().message);
  }
  return json_response(201, {{"id", id}});
}

Result<std::unique_ptr<Vm>> VmService::boot_guest(const std::string& id, const std::string& path,
                                                  Engine engine, uint64_t ram_bytes,
                                                  uint32_t vcpus) {
  Result<std::vector<std::byte>> file = read_file(path);
  if (!file)
    return make_error(ErrorCode::kInvalidArgument, "field 'guest': " + file.error().message);
  Result<GuestLayout> layout = GuestLayout::create(ram_bytes, vcpus);
  if (!layout) return make_error(layout.error().code, "field 'mem': " + layout.error().message);
  Result<std::unique_ptr<Vm>> vm = boot_elf(monitor_, engine, id, *file, *layout);
  if (!vm) return make_error(vm.error().code, path + ": " + vm.error().message);
  return vm;
}

Result<std::unique_ptr<Vm>> VmService::boot_kernel(const std::string& id, const std::string& path,
                                                   const std::optional<std::string>& initrd_path,
                                                   const std::string& cmdline, Engine engine,
                                                   uint64_t ram_bytes, uint32_t vcpus) {
  Result<std::vector<std::byte>> kernel = read_file(path);
  if (!kernel) {
    return make_error(ErrorCode::kInvalidArgument, "field 'kernel': " + kernel.error().message);
  }
  std::vector<std::byte> initrd;
  if (initrd_path) {
    Result<std::vector<std::byte>> read = read_file(*initrd_path);
    if (!read) {
      return make_error(ErrorCode::kInvalidArgument, "field 'initrd': " + read.error().message);
    }
    initrd = std::move(*read);
  }
  Result<GuestLayout> layout = GuestLayout::create_pc(ram_bytes, vcpus);
  if (!layout) return make_error(layout.error().code, "field 'mem': " + layout.error().message);
  Result<std::unique_ptr<Vm>> vm =
      boot_linux(monitor_, engine, id, {*kernel, initrd, cmdline}, *layout);
  if (!vm) return make_error(vm.error().code, path + ": " + vm.error().message);
  return vm;
}

nlohmann::json VmService::describe(const VmRecord& record) const {
  nlohmann::json vm = {{"id", record.id},
                       {"state", to_string(record.state)},
                       {"started", record.state != VmState::kHeld},
                       {"engine", to_string(record.engine)},
                       {"vcpus", record.vcpus},
                       {"mem_bytes", record.ram_bytes},
                       {"parent", nullptr},
                       {"clone_id", nullptr},
                       {"status", nullptr},
                       {"error", nullptr},
                       {"latency_ns", nullptr}};
  if (record.lineage) {
    vm["parent"] = record.lineage->parent;
    vm["clone_id"] = record.lineage->clone_id;
  }
  if (record.status) vm["status"] = *record.status;
  if (record.error) vm["error"] = *record.error;
  if (record.latency_ns) vm["latency_ns"] = *record.latency_ns;
  const nlohmann::json figures = vm_figures(monitor_, record);
  vm["counters"] = figures["faults"];
  vm["frames"] = figures["frames"];
  vm["engine_counters"] = figures["engine"];
  return vm;
}

ApiResponse VmService::list_vms() const {
  nlohmann::json vms = nlohmann::json::array();
  for (const VmRecord& record : table_.all())
    vms.push_back(describe(record));
  return json_response(200, {{"vms", vms}});
}

ApiResponse VmService::get_vm(const std::string& id) const {
  const std::optional<VmRecord> record = table_.find(id);
  if (!record) return fault(404, fmt::format("no VM with id '{}'", id));
  return json_response(200, describe(*record));
}

std::optional<ApiResponse> VmService::refuse_unless_started(const VmRecord& record,
                                                            const char* what) {
  if (record.state == VmState::kHeld) {
    return fault(
        409, fmt::format("{} has not started (resume it first): it cannot be {}", record.id, what));
  }
  if (record.state == VmState::kExited) {
    return fault(409, fmt::format("{} has exited: it cannot be {}", record.id, what));
  }
  return std::nullopt;
}

ApiResponse VmService::patch_vm(const ApiRequest& request, const std::string& id) {
  JsonFields fields = JsonFields::parse(request, {"state"});
  const std::optional<std::string> state = fields.required_string("state");
  if (state && *state != "Paused" && *state != "Resumed") {
    fields.fail("state", fmt::format("must be \"Paused\" or \"Resumed\", not \"{}\"", *state));
  }
  if (std::optional<ApiResponse> bad = fields.error_response()) return std::move(*bad);
  const std::optional<VmRecord> record = table_.find(id);
  if (!record) return fault(404, fmt::format("no VM with id '{}'", id));
  const bool pause = *state == "Paused";
  if (record->state == VmState::kHeld) {
    if (pause) return fault(409, fmt::format("{} is paused already (it has not started)", id));
    std::unique_ptr<Vm> vm = table_.take_held(id);
    if (!vm) return fault(409, fmt::format("{} is being resumed or deleted", id));
    if (Result<void> launched = monitor_.launch(std::move(vm)); !launched) {
      return fault(500, launched.error().message);
    }
    return no_content();
  }
  if (record->state == VmState::kExited) {
    return fault(409,
                 fmt::format("{} has exited: it cannot be {}", id, pause ? "paused" : "resumed"));
  }
  Result<void> done = make_error(ErrorCode::kInternal, "not done");
  Result<void> found = monitor_.with_vm(id, [this, &done, &id, pause](Vm& vm) {
    // Recorded under the VM's own serialization, so that racing PATCHes
    // leave the table saying what the VM is.
    const auto note = [this, &id, pause] { table_.set_paused(id, pause); };
    done = pause ? vm.pause(note) : vm.resume(note);
  });
  if (!found) return fault(409, fmt::format("{} has exited", id));
  if (!done) return error_response(done.error());
  return no_content();
}

ApiResponse VmService::delete_vm(const std::string& id) {
  const std::optional<VmRecord> record = table_.find(id);
  if (!record) return fault(404, fmt::format("no VM with id '{}'", id));
  // A held VM is destroyed here (its threads never ran guest code); a
  // running one is stopped, and the monitor destroys it as it ends.
  std::unique_ptr<Vm> held = table_.take_held(id);
  held.reset();
  (void)monitor_.with_vm(id, [](Vm& vm) { vm.stop(0); });
  table_.erase(id);
  return no_content();
}

nlohmann::json VmService::clones_json(const std::vector<std::string>& clones) const {
  const std::vector<std::optional<uint64_t>> latencies =
      table_.wait_first_instructions(clones, kLatencyPatience);
  nlohmann::json result = nlohmann::json::array();
  for (size_t i = 0; i < clones.size(); ++i) {
    nlohmann::json clone = {{"id", clones[i]}, {"latency_ns", nullptr}};
    if (latencies[i]) clone["latency_ns"] = *latencies[i];
    result.push_back(std::move(clone));
  }
  return result;
}

ApiResponse VmService::fork_vm(const ApiRequest& request, const std::string& id) {
  JsonFields fields = JsonFields::parse(request, {"count"});
  const std::optional<uint32_t> count = count_field(fields, "count", 1, kMaxCount);
  if (std::optional<ApiResponse> bad = fields.error_response()) return std::move(*bad);
  const std::optional<VmRecord> record = table_.find(id);
  if (!record) return fault(404, fmt::format("no VM with id '{}'", id));
  if (std::optional<ApiResponse> refused = refuse_unless_started(*record, "forked")) {
    return std::move(*refused);
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fault(503, "the daemon is stopping");
  }
  Result<std::vector<std::string>> made = make_error(ErrorCode::kInternal, "not forked");
  Result<void> found =
      monitor_.with_vm(id, [&made, &count](Vm& vm) { made = vm.fork_from_outside(*count); });
  if (!found) return fault(409, fmt::format("{} has exited: it cannot be forked", id));
  if (!made) {
    // The vCPU limit or the host refusing memory or threads: nothing started.
    const unsigned status = made.error().code == ErrorCode::kWrongState ? 409 : 503;
    return fault(status, fmt::format("fork of {} refused: {}", id, made.error().message));
  }
  return json_response(200, {{"clones", clones_json(*made)}});
}

ApiResponse VmService::snapshot_vm(const ApiRequest& request, const std::string& id) {
  JsonFields fields = JsonFields::parse(request, {"path", "type"});
  const std::optional<std::filesystem::path> path = path_field(fields, "path");
  const std::string type = fields.string("type").value_or("Full");
  if (type != "Full" && type != "Diff") {
    fields.fail("type", fmt::format("must be \"Full\" or \"Diff\", not \"{}\"", type));
  }
  if (std::optional<ApiResponse> bad = fields.error_response()) return std::move(*bad);
  const std::optional<VmRecord> record = table_.find(id);
  if (!record) return fault(404, fmt::format("no VM with id '{}'", id));
  if (std::optional<ApiResponse> refused = refuse_unless_started(*record, "snapshotted")) {
    return std::move(*refused);
  }
  const Vm::SnapshotKind kind = type == "Diff" ? Vm::SnapshotKind::kDiff : Vm::SnapshotKind::kFull;
  Result<SnapshotReport> report = make_error(ErrorCode::kInternal, "not snapshotted");
  Result<void> found = monitor_.with_vm(
      id, [&report, &path, kind](Vm& vm) { report = vm.snapshot_to(*path, kind); });
  if (!found) return fault(409, fmt::format("{} has exited: it cannot be snapshotted", id));
  if (!report) {
    // The directory (exists, not writable) is the request's; a diff of a VM
    // with no parent is the state's.
    const ErrorCode code = report.error().code;
    const unsigned status = code == ErrorCode::kWrongState ? 409
                            : code == ErrorCode::kSystem   ? 400
                                                           : status_for(code);
    return fault(status, fmt::format("snapshot of {}: {}", id, report.error().message));
  }
  return json_response(200, {{"path", report->dir.string()},
                             {"pause_ns", report->pause_ns},
                             {"write_ns", report->write_ns},
                             {"pages", report->pages},
                             {"diff", report->diff}});
}

ApiResponse VmService::load_snapshot(const ApiRequest& request) {
  const uint64_t requested_ns = now_ns();
  JsonFields fields = JsonFields::parse(request, {"path", "clones", "resume", "engine"});
  const std::optional<std::filesystem::path> path = path_field(fields, "path");
  const std::optional<uint32_t> clones = count_field(fields, "clones", 1, kMaxCount);
  const bool resume = fields.boolean("resume").value_or(true);
  const std::optional<Engine> engine = engine_field(fields, options_.engine);
  if (std::optional<ApiResponse> bad = fields.error_response()) return std::move(*bad);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return fault(503, "the daemon is stopping");
  }
  Result<OpenedSnapshot> opened = open_snapshot(*path);
  if (!opened) return fault(400, fmt::format("field 'path': {}", opened.error().message));
  Result<Hypervisor*> hypervisor = monitor_.hypervisor(*engine);
  if (!hypervisor) return fault(500, hypervisor.error().message);
  const std::string id = next_vm_id();
  RestoreOptions options{
      .clones = *clones, .eager = false, .prefetch = true, .name = id, .start = resume};
  Result<Restored> restored =
      restore_clones(monitor_, **hypervisor, *opened, options, requested_ns);
  if (!restored)
    return fault(503, fmt::format("load of {}: {}", path->string(), restored.error().message));
  for (std::unique_ptr<Vm>& held : restored->held)
    table_.hold(std::move(held), "created");
  if (restored->prefetch) {
    std::lock_guard lock(mutex_);
    prefetches_.push_back(std::move(restored->prefetch));
  }
  for (const std::string& clone : restored->clones)
    table_.emit("restored", clone, {{"path", opened->dir.string()}});
  nlohmann::json result = {{"clones", nlohmann::json::array()}};
  if (resume) {
    result["clones"] = clones_json(restored->clones);
  } else {
    for (const std::string& clone : restored->clones)
      result["clones"].push_back({{"id", clone}, {"latency_ns", nullptr}});
  }
  return json_response(200, result);
}

ApiResponse VmService::console(const ApiRequest& request, const std::string& id) const {
  const std::optional<VmRecord> record = table_.find(id);
  if (!record) return fault(404, fmt::format("no VM with id '{}'", id));
  uint64_t offset = 0;
  if (auto found = request.query.find("offset"); found != request.query.end()) {
    const std::string& text = found->second;
    if (text.empty() || text.size() > 19 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
      return fault(400,
                   fmt::format("query 'offset' must be an unsigned integer, not \"{}\"", text));
    }
    offset = std::stoull(text);
  }
  bool follow = false;
  if (auto found = request.query.find("follow"); found != request.query.end()) {
    if (found->second != "true" && found->second != "false" && !found->second.empty()) {
      return fault(400,
                   fmt::format("query 'follow' must be true or false, not \"{}\"", found->second));
    }
    follow = found->second != "false";
  }
  if (follow) {
    ApiResponse response;
    response.content_type = "text/plain; charset=utf-8";
    response.stream = std::make_shared<JournalStream>(record->console, offset);
    return response;
  }
  const Journal::Read read = record->console->read(offset, kConsoleRead);
  ApiResponse response;
  response.content_type = "text/plain; charset=utf-8";
  response.body = read.bytes;
  response.headers.emplace_back("X-Console-Offset", std::to_string(read.next));
  response.headers.emplace_back("X-Console-From", std::to_string(read.from));
  return response;
}

ApiResponse VmService::events(const ApiRequest& request) const {
  for (const auto& [name, value] : request.query) {
    return fault(400, fmt::format("unknown query parameter '{}' (GET /events takes none)", name));
  }
  ApiResponse response;
  response.content_type = "application/x-ndjson";
  response.stream = std::make_shared<JournalStream>(table_.events(), std::nullopt);
  return response;
}

ApiResponse VmService::metrics(const ApiRequest& request) const {
  bool prometheus = request.accept.find("text/plain") != std::string::npos;
  if (auto found = request.query.find("format"); found != request.query.end()) {
    if (found->second != "prometheus" && found->second != "json") {
      return fault(
          400, fmt::format("query 'format' must be prometheus or json, not \"{}\"", found->second));
    }
    prometheus = found->second == "prometheus";
  }
  const nlohmann::json figures = metrics_json(monitor_, table_);
  if (!prometheus) return json_response(200, figures);
  ApiResponse response;
  response.content_type = "text/plain; version=0.0.4";
  response.body = prometheus_text(figures);
  return response;
}

}  // namespace vmfork::api
