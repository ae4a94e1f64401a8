// The interpreter's only view of the world outside the vCPU: guest memory, port I/O and the
// per-basic-block service point. Engine-neutral: the soft engine implements it over the vCPU's
// translation cache (walking the project's EPT); tests implement it over a flat buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "ept/access.h"

namespace vmfork::soft {

// What the vCPU does after an `out` the environment has handled.
enum class PortAction : uint8_t {
  kContinue,  // go on with the next instruction
  kStop,      // stop after this instruction (RunExit kStopped, RIP past the `out`)
};

// The answer to a request for an exclusive section.
enum class Exclusive : uint8_t {
  kGranted,  // every other vCPU of the VM is stopped at an instruction boundary until
             // end_exclusive()
  kRetry,    // another vCPU is pausing the VM, or the VM ends: stop before this instruction
             // (RunExit kStopped, RIP at it, nothing changed) and run it again afterwards
};

class CpuEnvironment {
 public:
  virtual ~CpuEnvironment() = default;

  // Host pointer to guest-physical `gpa` for `access` (kRead, kWrite or kExecute; a kWrite
  // pointer may also be used for reads). Valid for the bytes of gpa's 4 KiB page, until the next
  // check(). An error ends the VM (e.g. kOutsideRam); the interpreter reports it as a memory
  // fault at the current RIP.
  virtual Result<std::byte*> translate(uint64_t gpa, Access access) = 0;

  // `size` is 1, 2 or 4 bytes; `value` holds that many low bytes. An error ends the VM.
  virtual Result<PortAction> port_out(uint16_t port, uint8_t size, uint32_t value) = 0;
  virtual Result<uint32_t> port_in(uint16_t port, uint8_t size) = 0;

  // Called at run() entry and at least once per basic block (after every taken branch, call,
  // ret, and every chunk of a long `rep`): services pending shootdowns. Returns true when the
  // vCPU must stop now (a pause request); the state is then at an instruction boundary.
  // Every pointer translate() returned before this call is invalid after it.
  virtual bool check() = 0;

  // A locked read-modify-write that the host cannot perform as one atomic instruction (its
  // operand crosses an aligned 8-byte word, so a cache line or a page) runs in an exclusive
  // section: no other vCPU of the VM executes between its read and its write, neither locked
  // operations nor plain loads and stores. The caller holds no translation across the request:
  // every pointer translate() returned before it is invalid after it. Inside the section
  // translate() works as usual (write faults run the COW protocol); end_exclusive() lets the
  // others run again. Whatever the others did before they stopped happens before the section, and
  // the section happens before whatever they do after it (a full barrier, as `lock` is on x86).
  virtual Exclusive begin_exclusive() = 0;
  virtual void end_exclusive() = 0;

  // Changes whenever cached translations were flushed; the interpreter then drops its
  // decoded-instruction cache (entirely).
  virtual uint64_t flush_generation() const = 0;
};

}  // namespace vmfork::soft
