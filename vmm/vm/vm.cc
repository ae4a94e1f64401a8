#include "vmm/vm/vm.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string_view>
#include <system_error>

#include "guestmm/snapshot.h"
#include "vmm/boot/boot_info.h"
#include "vmm/clock.h"
#include "vmm/vm/host_pauser.h"
#include "vmm/vm/monitor.h"

namespace vmfork {

Result<std::unique_ptr<Vm>> Vm::create(Monitor& monitor, Hypervisor& hypervisor, std::string name,
                                       std::unique_ptr<AddressSpace> space,
                                       const GuestLayout& layout,
                                       const std::vector<VcpuSnapshot>& vcpus,
                                       std::optional<uint64_t> fork_request_ns,
                                       const PlatformSnapshot* platform) {
  // Within the monitor's limit, or refused before anything is made.
  if (Result<void> room = monitor.reserve_vcpus(vcpus.size()); !room) return room.error();
  std::unique_ptr<Vm> vm(
      new Vm(monitor, hypervisor, std::move(name), std::move(space), layout, fork_request_ns));
  vm->reserved_vcpus_ = vcpus.size();
  if (Result<void> created = vm->create_vcpus(vcpus, platform); !created) return created.error();
  return vm;
}

Result<void> Vm::create_vcpus(const std::vector<VcpuSnapshot>& vcpus,
                              const PlatformSnapshot* platform) {
  Result<std::unique_ptr<Machine>> machine =
      hypervisor_.create_machine(*this, static_cast<uint32_t>(vcpus.size()));
  if (!machine) return machine.error();
  machine_ = std::move(*machine);
  if (this->platform() == Platform::kPc) {
    make_pc_ports();
    if (platform != nullptr) {
      if (Result<void> set = machine_->set_platform_state(platform->chips); !set) {
        return set.error();
      }
      pc_ports_->load(platform->ports);
    }
  }
  snapshot_requested_.assign(vcpus.size(), 0);
  for (uint32_t i = 0; i < vcpus.size(); ++i) {
    Result<std::unique_ptr<Vcpu>> made = machine_->create_vcpu(i, vcpus[i]);
    if (!made) return made.error();
    vcpus_.push_back(std::move(*made));
    if (!vcpus[i].halted) {
      std::lock_guard lock(mutex_);
      pause_.add_running();
    }
  }
  return Ok{};
}

Vm::Vm(Monitor& monitor, Hypervisor& hypervisor, std::string name,
       std::unique_ptr<AddressSpace> space, const GuestLayout& layout,
       std::optional<uint64_t> fork_request_ns)
    : monitor_(monitor),
      hypervisor_(hypervisor),
      name_(std::move(name)),
      space_(std::move(space)),
      layout_(layout),
      fork_request_ns_(fork_request_ns),
      console_(name_, monitor.console_echo()),
      outside_pauser_(std::make_unique<HostPauser>()) {}

Vm::~Vm() {
  // A VM never started (a refused fork's clone) lets its threads go.
  abandon();
  join();
  // vCPUs leave the address space's shootdown domain (soft), their
  // reclamation slots, and the engine's machine before the memory goes.
  vcpus_.clear();
  machine_.reset();
  monitor_.release_vcpus(reserved_vcpus_);
}

Result<void> Vm::spawn() {
  spawned_ = true;
  for (const std::unique_ptr<Vcpu>& vcpu : vcpus_) {
    try {
      vcpu->start();
    } catch (const std::system_error& error) {
      // The host's thread limit (RLIMIT_NPROC, pids cgroup) or memory.
      abandon();
      return make_error(ErrorCode::kSystem,
                        fmt::format("{}: cannot create the thread of vCPU {}: {}", name_,
                                    vcpu->index(), error.code().message()));
    }
  }
  return Ok{};
}

void Vm::start() {
  bool tell_monitor = false;
  {
    std::lock_guard lock(mutex_);
    started_ = true;
    launched_ = true;
    if (pause_.running() == 0) {
      // A clone of a VM whose vCPUs had all halted: ended already.
      if (!status_) status_ = 0;
      pause_.end();
      tell_monitor = true;
    }
    changed_.notify_all();
  }
  if (tell_monitor) monitor_.vm_ended(*this);
}

void Vm::abandon() {
  std::lock_guard lock(mutex_);
  if (started_) return;
  if (!status_) status_ = kVmErrorStatus;
  pause_.end();
  changed_.notify_all();
}

void Vm::join() {
  for (const std::unique_ptr<Vcpu>& vcpu : vcpus_)
    vcpu->join();
  console_.flush();
}

uint32_t Vm::status() const {
  std::lock_guard lock(mutex_);
  return status_.value_or(kVmErrorStatus);
}

void Vm::end(uint32_t status) {
  {
    std::lock_guard lock(mutex_);
    if (!status_) status_ = status;
    pause_.end();
    changed_.notify_all();
  }
  kick_all(nullptr);
}

void Vm::kick_all(const Vcpu* except) {
  for (const std::unique_ptr<Vcpu>& vcpu : vcpus_) {
    if (vcpu.get() != except) vcpu->kick();
  }
}

namespace {

// The devices' ports (DESIGN section 8): each takes `out` of one width only.
struct DevicePort {
  uint16_t port;
  uint8_t size;
  std::string_view name;
};
constexpr DevicePort kDevicePorts[] = {{port::kConsole, 1, "console"},
                                       {port::kExit, 4, "exit"},
                                       {port::kFork, 4, "fork"},
                                       {port::kSnapshot, 4, "snapshot"}};

const DevicePort* device_port(uint16_t port) {
  for (const DevicePort& device : kDevicePorts) {
    if (device.port == port) return &device;
  }
  return nullptr;
}

std::string_view out_mnemonic(uint8_t size) {
  return size == 1 ? "outb" : size == 2 ? "outw" : "outl";
}

}  // namespace

Result<PortAction> Vm::port_out(Vcpu& vcpu, uint16_t port, uint8_t size, uint32_t value) {
  if (pc_ports_ && !port::is_abi_port(port, size)) {
    pc_ports_->out(port, size, value);
    return ending() ? PortAction::kStop : PortAction::kContinue;
  }
  if (port == port::kConsole && size == 1) {
    console_.put(static_cast<char>(value & 0xff));
    return PortAction::kContinue;
  }
  if (port == port::kExit && size == 4) {
    end(value);
    return PortAction::kStop;
  }
  // Served by the vCPU at its next boundary (serve_fork_request).
  if ((port == port::kFork || port == port::kSnapshot) && size == 4) {
    snapshot_requested_[vcpu.index()] = port == port::kSnapshot;
    return PortAction::kFork;
  }
  if (const DevicePort* device = device_port(port)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("out of {} byte(s) to the {} port {:#x} by vCPU {}: it takes "
                                  "{} byte(s) ({})",
                                  size, device->name, port, vcpu.index(), device->size,
                                  out_mnemonic(device->size)));
  }
  return make_error(
      ErrorCode::kInvalidArgument,
      fmt::format("out of {} byte(s) to unknown port {:#x} by vCPU {}", size, port, vcpu.index()));
}

Result<uint32_t> Vm::port_in(Vcpu& vcpu, uint16_t port, uint8_t size) {
  if (pc_ports_) return pc_ports_->in(port, size);
  if (const DevicePort* device = device_port(port)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("in of {} byte(s) from the {} port {:#x} by vCPU {}: it is "
                    "written only ({})",
                    size, device->name, port, vcpu.index(), out_mnemonic(device->size)));
  }
  return make_error(
      ErrorCode::kInvalidArgument,
      fmt::format("in of {} byte(s) from unknown port {:#x} by vCPU {}", size, port, vcpu.index()));
}

bool Vm::serve_fork_request(Vcpu& vcpu, std::optional<uint32_t>& request) {
  if (ending()) return false;
  const bool served =
      snapshot_requested_[vcpu.index()] ? try_snapshot(vcpu) : try_fork(vcpu, *request);
  if (served) {
    request.reset();
    return true;
  }
  return park_until_resumed(vcpu);
}

bool Vm::pause_others(Vcpu& pauser) {
  if (!pause_.try_take(pauser)) return false;
  kick_all(&pauser);
  pause_.wait_until_others_parked(pauser);
  return true;
}

// The section is the pause of a fork (see vcpu_pause.h for why it neither
// deadlocks nor starves anyone); in it the holder runs alone, and its own COW
// faults shoot down vCPUs that are all parked (acknowledged on their behalf).
bool Vm::begin_exclusive(Vcpu& vcpu) {
  if (!pause_others(vcpu)) return false;
  // Running again (flushing what we were asked to while parked): our COW
  // breaks in the section need a vCPU that takes part in its shootdowns.
  vcpu.resuming();
  if (ending()) {
    pause_.resume_others();
    return false;
  }
  return true;
}

void Vm::make_pc_ports() {
  pc_ports_ = std::make_unique<PcPorts>(PcPorts::Callbacks{
      .console_byte = [this](uint8_t byte) { console_.put(static_cast<char>(byte)); },
      .irq_line =
          [this](uint32_t gsi, bool level) {
            if (Result<void> set = machine_->set_irq_line(gsi, level); !set) {
              spdlog::warn("{}: interrupt line {} not driven: {}", name_, gsi, set.error().message);
            }
          },
      .reset =
          [this] {
            spdlog::info("{}: the guest reset the machine (i8042); the VM ends", name_);
            end(0);
          },
  });
}

Result<Vm::Frozen> Vm::freeze(Vcpu* requester) {
  Frozen frozen;
  for (const std::unique_ptr<Vcpu>& vcpu : vcpus_) {
    Result<VcpuSnapshot> state =
        vcpu.get() == requester ? requester->snapshot_past_fork() : vcpu->snapshot();
    if (!state) return state.error();
    frozen.vcpus.push_back(std::move(*state));
  }
  if (pc_ports_) {
    Result<EngineBlob> chips = machine_->platform_state();
    if (!chips) return chips.error();
    frozen.platform = PlatformSnapshot{std::move(*chips), pc_ports_->save()};
  }
  // No fault of ours is being served while the snapshot is taken; the
  // snapshot clears W in our root, so what the engine mapped of our memory
  // (kvm: the realized memory) is stale from then on and starts over,
  // lazily, before any vCPU resumes.
  std::unique_lock<std::mutex> quiet = machine_->hold_faults();
  Result<std::unique_ptr<MemorySnapshot>> taken =
      space_->snapshot(fmt::format("{}.snapshot", name_));
  if (!taken) return taken.error();
  frozen.memory = std::move(*taken);
  if (Result<void> restarted = machine_->restart_memory_locked(); !restarted) {
    // Our vCPUs must not run on memory that still maps shared frames
    // writable: this VM ends (nothing made of the snapshot starts).
    if (quiet.owns_lock()) quiet.unlock();
    fail(fmt::format("memory not restarted after a snapshot: {}", restarted.error().message));
    return restarted.error();
  }
  return frozen;
}

void Vm::fail(const std::string& cause) {
  monitor_.report_vm_error(name_, fmt::format("{}: {}", name_, cause));
  end(kVmErrorStatus);
}

bool Vm::one_fewer_running_locked() {
  const uint32_t running = pause_.stopped();
  changed_.notify_all();
  return running == 0 && launched_;
}

void Vm::vcpu_halted(Vcpu& /*vcpu*/) {
  bool tell_monitor = false;
  {
    std::lock_guard lock(mutex_);
    if (pause_.running() == 1) {
      if (!status_) status_ = 0;  // every vCPU halted
      pause_.end();
    }
    tell_monitor = one_fewer_running_locked();
  }
  // Without our lock: the monitor may destroy us once told (after joining
  // this thread).
  if (tell_monitor) monitor_.vm_ended(*this);
}

void Vm::vcpu_failed(Vcpu& vcpu, const std::string& cause) {
  // The interpreter's causes name the instruction and its RIP.
  monitor_.report_vm_error(name_, fmt::format("{} vCPU {}: {}", name_, vcpu.index(), cause));
  end(kVmErrorStatus);
}

void Vm::vcpu_exited() {
  bool tell_monitor = false;
  {
    std::lock_guard lock(mutex_);
    tell_monitor = one_fewer_running_locked();
  }
  if (tell_monitor) monitor_.vm_ended(*this);
}

void Vm::note_first_instruction() {
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return started_ || ending(); });
  }
  if (ending()) return;
  if (!fork_request_ns_ || first_instruction_seen_.exchange(true)) return;
  monitor_.record_fork_latency(name_, now_ns() - *fork_request_ns_);
}

void Vm::memory_failed(const std::string& cause) {
  monitor_.report_vm_error(name_, fmt::format("{}: memory fault: {}", name_, cause));
  end(kVmErrorStatus);
}

}  // namespace vmfork
