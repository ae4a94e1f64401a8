#include "vmm/vm/console.h"

#include <fmt/format.h>

#include <cstdio>

namespace vmfork {

namespace {
// One line at a time on stdout, whichever VM it comes from.
std::mutex& stdout_mutex() {
  static std::mutex mutex;
  return mutex;
}
// A guest that never ends its lines must not make the monitor hold its
// output forever (or grow without bound).
constexpr size_t kMaxLine = 4096;
}  // namespace

Console::Console(const std::string& vm_name, bool echo)
    : prefix_(fmt::format("[{}] ", vm_name)),
      echo_(echo),
      journal_(std::make_shared<Journal>(kJournalBytes)) {}

void Console::put(char byte) {
  std::lock_guard lock(mutex_);
  if (byte == '\n') {
    print_locked();
    return;
  }
  line_.push_back(byte);
  if (line_.size() >= kMaxLine) print_locked();
}

void Console::flush() {
  std::lock_guard lock(mutex_);
  if (!line_.empty()) print_locked();
}

void Console::print_locked() {
  if (echo_) {
    std::lock_guard out(stdout_mutex());
    std::fwrite(prefix_.data(), 1, prefix_.size(), stdout);
    std::fwrite(line_.data(), 1, line_.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  line_.push_back('\n');
  journal_->append(line_);
  line_.clear();
}

}  // namespace vmfork
