// PVM hosts only (kvm/pvm.h). In PVM's native mode a guest's `hlt` does not
// stop the vCPU: PVM runs it through its instruction emulator, which drops
// the halt (mainline KVM's emulator does too without an in-kernel LAPIC,
// but mainline sees hlt as a VM exit, never in the emulator). KVM_RUN does
// not return and the vCPU runs on past the hlt (seen on these hosts, with
// and without an in-kernel irqchip, whatever the VIF page's IF says). Its
// halt_exits statistic stays 0; its insn_emulation statistic counts the
// hlt (and every other instruction PVM emulates: a port write, whose exit
// the vCPU counts, or a privileged instruction).
//
// The watch reads insn_emulation of every running vCPU from a thread of its
// own (one pread each; the vCPU is not disturbed). When it has grown while
// the vCPU made no exit, the vCPU ran an instruction PVM emulated without
// telling the monitor, perhaps a hlt: the watch calls the vCPU's handler,
// which kicks it out of KVM_RUN, and the vCPU stops if it stands at a hlt
// or right after one (KvmVcpu::stopped_at_hlt; a `hlt; jmp` loop always
// does). A vCPU whose counter stays still is read less and less often
// (every 1 ms at first, every 32 ms at most), so idle vCPUs cost almost
// nothing.
//
// What is not exact: a vCPU stops a few milliseconds after its hlt, not at
// it, and one that runs on past a hlt into other code is not stopped. The
// guest runtime halts in a `hlt; jmp` loop, so its guests see no
// difference.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "vmm/kvm/vcpu_stat.h"

namespace vmfork::kvm {

class HaltWatch {
 public:
  using Handler = std::function<void()>;
  class Registration;

  HaltWatch() = default;
  ~HaltWatch();
  HaltWatch(const HaltWatch&) = delete;
  HaltWatch& operator=(const HaltWatch&) = delete;

  // Watches a vCPU until the registration is destroyed: `on_halt` runs on
  // the watch's thread when `emulations` (its insn_emulation) has grown
  // while `exits` (its count of KVM_RUN returns) has not, and never after
  // the registration's destructor has returned.
  [[nodiscard]] std::unique_ptr<Registration> watch(const VcpuStat& emulations,
                                                    const std::atomic<uint64_t>& exits,
                                                    Handler on_halt);

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    const VcpuStat* emulations;
    const std::atomic<uint64_t>* exits;
    uint64_t emulations_seen;
    uint64_t exits_seen;
    Handler on_halt;
    Clock::duration interval;
    Clock::time_point due;
  };
  void run();
  void forget(std::list<Entry>::iterator entry);

  std::mutex mutex_;
  std::condition_variable changed_;
  std::list<Entry> entries_;  // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::thread thread_;        // started by the first watch()
};

class HaltWatch::Registration {
 public:
  Registration(HaltWatch& watch, std::list<Entry>::iterator entry) : watch_(watch), entry_(entry) {}
  ~Registration() { watch_.forget(entry_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  HaltWatch& watch_;
  std::list<Entry>::iterator entry_;
};

}  // namespace vmfork::kvm
