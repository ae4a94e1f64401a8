// The console device (port 0x3F8) of one VM: bytes are collected into lines,
// and each finished line is printed on stdout with the VM's name in front
// ("[vm0] ", "[vm0.1] "), whole, so the output of VMs and clones running at
// once stays readable.
#pragma once

#include <mutex>
#include <string>

namespace vmfork {

class Console {
 public:
  explicit Console(const std::string& vm_name);
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;
  ~Console() { flush(); }

  // Any vCPU of the VM, any thread.
  void put(char byte);
  // Prints what is left of an unfinished line (the VM ended).
  void flush();

 private:
  void print_locked();

  const std::string prefix_;
  std::mutex mutex_;
  std::string line_;  // guarded by mutex_
};

}  // namespace vmfork
