#include "vmm/cli/serve_command.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "vmm/api/http/http_server.h"
#include "vmm/api/vm_service.h"
#include "vmm/api/vm_table.h"
#include "vmm/cli/engine_choice.h"
#include "vmm/cli/size_arg.h"
#include "vmm/cli/stop_signals.h"
#include "vmm/cli/vm_session.h"
#include "vmm/engines/open_hypervisor.h"
#include "vmm/vm/monitor.h"

namespace vmfork::cli {

namespace {

constexpr const char* kVersion = "0.12.0";

struct ServeArgs {
  std::string api_sock;
  uint64_t pool_bytes = 0;  // 0: what the host has available
  EngineChoice engine = EngineChoice::kAuto;
  uint32_t workers = 4;
};

Result<int> serve(const ServeArgs& args) {
  // Before any thread exists, so that every thread inherits the mask.
  StopSignals signals;
  Result<Engine> engine = choose_engine(args.engine);
  if (!engine) return engine.error();
  const uint64_t pool_bytes = args.pool_bytes != 0 ? args.pool_bytes : default_pool_bytes();
  // Frames are taken from the host as VMs write them: an idle daemon costs
  // little, whatever its pool.
  Result<std::unique_ptr<Monitor>> monitor =
      Monitor::create(open_hypervisor, pool_bytes, Populate::kOnDemand);
  if (!monitor) return monitor.error();
  api::VmTable table;
  (*monitor)->set_listener(&table);
  api::VmService service(**monitor, table,
                         {.engine = *engine, .pool_bytes = pool_bytes, .version = kVersion});
  Result<std::unique_ptr<api::HttpServer>> server = api::HttpServer::start(
      args.api_sock, [&service](const api::ApiRequest& request) { return service.handle(request); },
      api::ServerOptions{.workers = args.workers});
  if (!server) return server.error();
  Monitor& vms = **monitor;
  const bool watching = signals.watch([&vms, &service](int signal) {
    spdlog::info("{}: stopping every VM", signal_name(signal));
    service.stopping();
    vms.stop_all(128 + static_cast<uint32_t>(signal));
  });
  if (!watching) return make_error(ErrorCode::kSystem, "cannot create the signal thread");
  spdlog::info("serving the API on {} (engine {}, pool {})", args.api_sock, to_string(*engine),
               format_size(pool_bytes));
  // Until a signal has stopped every VM.
  vms.serve_until_stopped();
  signals.unwatch();
  // No handler runs after this; VMs a last handler launched are stopped
  // (stop_all stops every later launch) and reaped.
  (*server)->stop();
  table.drop_held();
  vms.wait();
  spdlog::info("stopped; {} removed", args.api_sock);
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, std::function<int()>& chosen) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* serve_cmd = app.add_subcommand(
      "serve",
      "Run the daemon of the control API: HTTP/1.1 with JSON bodies on the UNIX socket "
      "--api-sock (mode 0600), one process holding every VM and its clones (create, pause, "
      "fork, snapshot, load, console, events, metrics: see the README's API section; `vmfork "
      "vm ... --api-sock PATH` is its client). SIGINT or SIGTERM stops every VM, removes the "
      "socket and exits 0.");
  serve_cmd->add_option("--api-sock", args->api_sock, "The UNIX socket to serve the API on")
      ->required()
      ->type_name("PATH");
  serve_cmd
      ->add_option("--workers", args->workers,
                   "Threads running requests at once, 1 to 64 (default: 4)")
      ->type_name("N")
      ->check(CLI::Range(1, 64));
  add_engine_options(*serve_cmd, args->engine, args->pool_bytes);
  serve_cmd->callback([args, &chosen] {
    chosen = [args] { return run_reporting_errors([&] { return serve(*args); }); };
  });
}

}  // namespace vmfork::cli
