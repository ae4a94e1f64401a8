// The console device (port 0x3F8) of one VM: bytes are collected into lines,
// and each finished line is printed on stdout with the VM's name in front
// ("[vm0] ", "[vm0.1] "), whole, so the output of VMs and clones running at
// once stays readable (unless the monitor's echo is off: a bench that prints
// JSON). Each finished line also goes to the VM's console journal (what the
// control API serves), which outlives the VM.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "vmm/vm/journal.h"

namespace vmfork {

class Console {
 public:
  // The most a console journal keeps of a VM's output.
  static constexpr size_t kJournalBytes = 1 << 20;

  // `echo`: print finished lines on stdout, besides the journal.
  Console(const std::string& vm_name, bool echo);
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;
  ~Console() {
    flush();
    journal_->close();
  }

  // Any vCPU of the VM, any thread.
  void put(char byte);
  // Prints what is left of an unfinished line (the VM ended).
  void flush();
  const std::shared_ptr<Journal>& journal() const { return journal_; }

 private:
  void print_locked();

  const std::string prefix_;
  const bool echo_;
  const std::shared_ptr<Journal> journal_;
  std::mutex mutex_;
  std::string line_;  // guarded by mutex_
};

}  // namespace vmfork
