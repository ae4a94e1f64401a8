#include "guestmm/vcpu_memory.h"

namespace vmfork {

Result<std::unique_ptr<VcpuMemory>> VcpuMemory::create(AddressSpace& space, VcpuStart start) {
  Reclaimer::Participant* participant = space.memory().reclaimer().join();
  if (participant == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "too many vCPUs for reclamation");
  }
  std::unique_ptr<VcpuMemory> vcpu(new VcpuMemory(space, participant));
  if (start == VcpuStart::kParked) vcpu->park();  // before any initiator can see it
  if (!space.vcpus().add(&vcpu->target_)) {
    vcpu->joined_domain_ = false;
    return make_error(ErrorCode::kInvalidArgument, "too many vCPUs in " + space.name());
  }
  return vcpu;
}

VcpuMemory::VcpuMemory(AddressSpace& space, Reclaimer::Participant* participant)
    : space_(space), memory_(space.memory()), eptp_(space.eptp()), participant_(participant) {}

VcpuMemory::~VcpuMemory() {
  if (joined_domain_) space_.vcpus().remove(&target_);
  memory_.reclaimer().leave(participant_);
}

Result<std::byte*> VcpuMemory::translate_slow(Gpa gpa, Access access) {
  const Gfn gfn = gpa.gfn();
  for (;;) {
    // The walk and the insert happen with no shootdown serviced in between,
    // so an INVEPT that follows a change this walk missed waits for us and
    // then flushes what we insert.
    const WalkResult walk = memory_.tree().walk(space_.root(), gfn, access);
    if (walk.ok()) {
      tlb_.insert(eptp_, gfn, walk.frame, walk.allowed);
      return memory_.frame_data(walk.frame) + gpa.page_offset();
    }
    if (walk.kind == WalkResult::Kind::kMisconfiguration) {
      return make_error(ErrorCode::kMisconfigured, "EPT misconfiguration in " + space_.name());
    }
    if (Result<Resolved> fixed = space_.handle_fault(gpa, access, *this); !fixed)
      return fixed.error();
  }
}

void VcpuMemory::park() {
  target_.park();
  memory_.reclaimer().offline(*participant_);
}

void VcpuMemory::resume() {
  memory_.reclaimer().quiescent(*participant_);
  target_.resume();
}

}  // namespace vmfork
