// The VM as its engine sees it: what a machine and its vCPUs call back into
// for ports, pauses, halts, faults and exits. The VM (vmm/vm/vm.h)
// implements it; engines know no more of the VM than this.
//
// The vCPUs' threads are the engines' own and call back (rather than
// returning exits to a loop of the VM's) because the soft engine reaches
// these points in the middle of an instruction (a port access, an exclusive
// section of a locked access, a shootdown check per basic block) and the kvm
// engine's memory faults arrive on its fault service's thread, not a vCPU's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "guestmm/address_space.h"
#include "vmm/boot/platform.h"
#include "vmm/hypervisor/vcpu.h"

namespace vmfork {

// What the vCPU does after a port write.
enum class PortAction : uint8_t {
  kContinue,
  kStop,  // the VM ends: stop at the next boundary
  // A fork request (DESIGN section 8) with the written value as the clone
  // count: the vCPU records it, stops at the boundary after the `out` and
  // hands it to serve_fork_request() there.
  kFork,
};

class VmHost {
 public:
  virtual ~VmHost() = default;
  virtual AddressSpace& space() = 0;
  // What the guest expects around its RAM (a PC's needs the engine's
  // interrupt controllers and timer: Machine::set_irq_line).
  virtual Platform platform() const = 0;

  // --- Devices. ---
  virtual Result<PortAction> port_out(Vcpu& vcpu, uint16_t port, uint8_t size, uint32_t value) = 0;
  virtual Result<uint32_t> port_in(Vcpu& vcpu, uint16_t port, uint8_t size) = 0;

  // --- The pause (vmm/vm/vcpu_pause.h). ---
  // A pause or the end was requested: the vCPU must stop at the next
  // boundary. With `self`: a pause that `self` holds does not count.
  virtual bool must_stop(const Vcpu* self = nullptr) const = 0;
  virtual bool ending() const = 0;
  // The vCPU stopped for a pause: parks until it ends (or is handed to this
  // vCPU). False: the VM ends.
  virtual bool park_until_resumed(Vcpu& vcpu) = 0;
  // At the boundary after `vcpu`'s fork request: serves `request` (reset
  // once served), or parks while another vCPU's pause goes first (the
  // request is retried after it). False: the VM ended.
  virtual bool serve_fork_request(Vcpu& vcpu, std::optional<uint32_t>& request) = 0;
  // An exclusive section for `vcpu` (a locked access the host cannot make
  // atomic): true when every other running vCPU is parked until
  // end_exclusive(); false when the caller must stop before its instruction,
  // park (park_until_resumed) and try again.
  virtual bool begin_exclusive(Vcpu& vcpu) = 0;
  virtual void end_exclusive() = 0;

  // --- The vCPU's life. ---
  // Before its first guest instruction: blocks until the VM is started. The
  // VM may have ended instead (abandoned): the thread must check ending().
  virtual void note_first_instruction() = 0;
  // hlt: the vCPU stopped for good (its thread returns right after).
  virtual void vcpu_halted(Vcpu& vcpu) = 0;
  // The VM ends with an error naming the vCPU and `cause`.
  virtual void vcpu_failed(Vcpu& vcpu, const std::string& cause) = 0;
  // The vCPU's thread is about to return (the VM ends).
  virtual void vcpu_exited() = 0;
  // A memory fault of the VM that no vCPU can be named for: the VM ends
  // with an error naming `cause`.
  virtual void memory_failed(const std::string& cause) = 0;
};

}  // namespace vmfork
