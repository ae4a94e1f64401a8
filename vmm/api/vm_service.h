// The control API's resources (the README's API section): each request is
// mapped onto the monitor, its VMs and the VM table. Handlers run on the
// server's worker threads, several at once; operations on one VM are
// serialized by the VM itself (its operations from outside), and the
// monitor pins a VM while a handler uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/api/http/http_message.h"
#include "vmm/api/http/router.h"
#include "vmm/api/vm_table.h"
#include "vmm/vm/monitor.h"
#include "vmm/vm/working_set_prefetch.h"

namespace vmfork::api {

struct ServiceOptions {
  Engine engine = Engine::kSoft;  // for VMs that name none
  uint64_t pool_bytes = 0;
  std::string version;
};

class VmService {
 public:
  // `table` is `monitor`'s listener.
  VmService(Monitor& monitor, VmTable& table, ServiceOptions options);
  ApiResponse handle(const ApiRequest& request) const { return router_.route(request); }
  // The daemon stops: requests that would start a VM are refused (503).
  void stopping();

 private:
  ApiResponse root() const;
  ApiResponse create_vm(const ApiRequest& request);
  // The VM of POST /vms: a guest ELF, or Linux. Errors of the request are
  // kInvalidArgument.
  Result<std::unique_ptr<Vm>> boot_guest(const std::string& id, const std::string& path,
                                         Engine engine, uint64_t ram_bytes, uint32_t vcpus);
  Result<std::unique_ptr<Vm>> boot_kernel(const std::string& id, const std::string& path,
                                          const std::optional<std::string>& initrd_path,
                                          const std::string& cmdline, Engine engine,
                                          uint64_t ram_bytes, uint32_t vcpus);
  ApiResponse list_vms() const;
  ApiResponse get_vm(const std::string& id) const;
  ApiResponse patch_vm(const ApiRequest& request, const std::string& id);
  ApiResponse delete_vm(const std::string& id);
  ApiResponse fork_vm(const ApiRequest& request, const std::string& id);
  ApiResponse snapshot_vm(const ApiRequest& request, const std::string& id);
  ApiResponse load_snapshot(const ApiRequest& request);
  ApiResponse console(const ApiRequest& request, const std::string& id) const;
  ApiResponse events(const ApiRequest& request) const;
  ApiResponse metrics(const ApiRequest& request) const;

  // The VM's JSON, with live counters while it runs.
  nlohmann::json describe(const VmRecord& record) const;
  // The clones' ids and latencies, as fork and load return them.
  nlohmann::json clones_json(const std::vector<std::string>& clones) const;
  std::string next_vm_id();
  // 409 for a record that cannot take an operation from outside now.
  static std::optional<ApiResponse> refuse_unless_started(const VmRecord& record, const char* what);

  Monitor& monitor_;
  VmTable& table_;
  const ServiceOptions options_;
  Router router_;
  std::mutex mutex_;
  uint64_t next_id_ = 0;                                         // guarded by mutex_
  bool stopping_ = false;                                        // guarded by mutex_
  std::vector<std::unique_ptr<WorkingSetPrefetch>> prefetches_;  // guarded by mutex_
};

}  // namespace vmfork::api
