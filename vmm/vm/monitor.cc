#include "vmm/vm/monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "vmm/vm/memory_checksum.h"

namespace vmfork {

Result<std::unique_ptr<Monitor>> Monitor::create(uint64_t pool_bytes, Populate populate) {
  Result<std::unique_ptr<GuestMemory>> memory =
      GuestMemory::create({.pool_bytes = pool_bytes, .populate = populate});
  if (!memory) return memory.error();
  return std::unique_ptr<Monitor>(new Monitor(std::move(*memory)));
}

Monitor::~Monitor() {
  (void)wait();
  // VMs (and their address spaces) go before the memory they live in, and
  // before the fault service of the kvm engine.
  std::lock_guard lock(mutex_);
  vms_.clear();
}

Result<kvm::KvmHost*> Monitor::kvm_host() {
  std::lock_guard lock(mutex_);
  if (!kvm_) {
    Result<std::unique_ptr<kvm::KvmHost>> opened = kvm::KvmHost::open();
    if (!opened) return opened.error();
    kvm_ = std::move(*opened);
  }
  return kvm_.get();
}

std::vector<MemoryChecksum> Monitor::memory_checksums() const {
  std::lock_guard lock(mutex_);
  return checksums_;
}

void Monitor::launch(std::unique_ptr<Vm> vm) {
  Vm& started = *vm;
  {
    std::lock_guard lock(mutex_);
    vms_.push_back(std::move(vm));
  }
  started.start();
}

int Monitor::wait() {
  int first_failure = 0;
  // VMs launched while we wait (clones) are appended: walk by index.
  for (size_t i = 0;; ++i) {
    Vm* vm = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (i >= vms_.size()) break;
      vm = vms_[i].get();
    }
    if (vm == nullptr) continue;  // an earlier wait() took it
    vm->join();
    const int status = vm->status();
    spdlog::info("{} ended with status {}", vm->name(), status);
    if (const kvm::KvmMachine* machine = vm->kvm_machine()) {
      const kvm::GuestRamCounters ram = machine->ram().counters();
      spdlog::info(
          "{}: {} host mapping(s) of guest RAM; {} run(s) of {} page(s) realized, {} "
          "COW copies put in place, {} pages unprotected in place, {} RAM access(es) completed "
          "for KVM as MMIO",
          vm->name(), machine->ram().mappings(), ram.runs_mapped, ram.pages_realized, ram.remaps,
          ram.unprotects, ram.mmio_completions);
    }
    if (status != 0 && first_failure == 0) first_failure = status;
    MemoryChecksum checksum{vm->name(), 0};
    if (record_checksums_) checksum.checksum = memory_checksum(vm->space());
    // Its memory goes back to the pool now, not when every VM has ended.
    std::lock_guard lock(mutex_);
    if (record_checksums_) checksums_.push_back(std::move(checksum));
    vms_[i].reset();
  }
  return first_failure;
}

void Monitor::report_vm_error(const std::string& message) {
  // Always shown, whatever the log level: a VM ended on it.
  fmt::print(stderr, "vmfork: {}\n", message);
  std::fflush(stderr);
}

void Monitor::record_fork_latency(const std::string& clone, uint64_t ns) {
  spdlog::info("{}: fork latency {:.1f} us (request to first instruction)", clone,
               static_cast<double>(ns) / 1000);
  std::lock_guard lock(mutex_);
  fork_latencies_.push_back({clone, ns});
}

std::vector<ForkLatency> Monitor::fork_latencies() const {
  std::lock_guard lock(mutex_);
  return fork_latencies_;
}

}  // namespace vmfork
