// The architectural state of one vCPU in no engine's terms: what a snapshot
// keeps (DESIGN section 7) and what a vCPU starts from. Each engine converts
// it to and from its own (kvm_regs/kvm_sregs, the interpreter's registers).
// What one engine cannot express in the other's terms (the x87/SSE state,
// KVM's pending-interrupt bitmap) travels as an opaque blob tagged with the
// engine that made it; an engine ignores another's blob and starts from its
// own reset value for that part.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "vmm/boot/vcpu_boot_state.h"
#include "vmm/hypervisor/engine.h"

namespace vmfork {

// General-purpose registers in SDM encoding order (rax, rcx, rdx, rbx, rsp,
// rbp, rsi, rdi, r8..r15).
struct CpuRegisters {
  std::array<uint64_t, 16> gpr{};
  uint64_t rip = 0;
  uint64_t rflags = 0x2;  // bit 1 is reserved, always 1

  static constexpr unsigned kRax = 0;
  uint64_t& rax() { return gpr[kRax]; }
  friend bool operator==(const CpuRegisters&, const CpuRegisters&) = default;
};

// A segment register with its hidden (descriptor cache) part.
struct CpuSegment {
  uint64_t base = 0;
  uint32_t limit = 0;  // in bytes (0xffffffff for a flat 4 GiB segment)
  uint16_t selector = 0;
  uint8_t type = 0;  // the descriptor's 4-bit type field
  uint8_t dpl = 0;
  bool present = false;
  bool default_32bit = false;  // D/B
  bool code_or_data = false;   // S
  bool long_mode = false;      // L
  bool granularity = false;    // G
  bool available = false;      // AVL
  bool unusable = false;       // VMX's "segment unusable"
  friend bool operator==(const CpuSegment&, const CpuSegment&) = default;
};

struct CpuDescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0;
  friend bool operator==(const CpuDescriptorTable&, const CpuDescriptorTable&) = default;
};

struct CpuSegments {
  CpuSegment cs, ds, es, fs, gs, ss, tr, ldt;
  CpuDescriptorTable gdt, idt;
  friend bool operator==(const CpuSegments&, const CpuSegments&) = default;
};

struct CpuControl {
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
  uint64_t efer = 0;
  uint64_t apic_base = 0;
  friend bool operator==(const CpuControl&, const CpuControl&) = default;
};

struct CpuMsr {
  uint32_t index = 0;
  uint64_t value = 0;
  friend bool operator==(const CpuMsr&, const CpuMsr&) = default;
};

// State only the engine that made it can read (see the top of this file).
struct EngineBlob {
  Engine engine = Engine::kSoft;
  std::vector<uint8_t> bytes;  // empty: none
  friend bool operator==(const EngineBlob&, const EngineBlob&) = default;
};

struct CpuState {
  CpuRegisters regs;
  CpuSegments segments;
  CpuControl control;
  std::vector<CpuMsr> msrs;  // besides those the fields above hold (EFER, segment bases)
  // The guest TSC's offset from the host's, where the engine has one; a
  // clone takes it so that its TSC continues the original's.
  std::optional<uint64_t> tsc_offset;
  EngineBlob fpu;  // x87, SSE and pending-event state
  friend bool operator==(const CpuState&, const CpuState&) = default;
};

// The DESIGN section 8 start state, field for field; TR, LDTR and the FPU
// are left to the engine (Hypervisor::start_state).
CpuState cpu_state_from_boot(const VcpuBootState& boot);

}  // namespace vmfork
