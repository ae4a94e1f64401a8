#include "vmm/cli/line_splitter.h"

namespace vmfork::cli {

namespace {

std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

void LineSplitter::feed(std::string_view bytes) {
  size_t end = bytes.find('\n');
  while (end != std::string_view::npos) {
    if (partial_.empty()) {
      on_line_(without_cr(bytes.substr(0, end)));
    } else {
      partial_.append(bytes.substr(0, end));
      on_line_(without_cr(partial_));
      partial_.clear();
    }
    bytes.remove_prefix(end + 1);
    end = bytes.find('\n');
  }
  partial_.append(bytes);
}

void LineSplitter::finish() {
  if (!partial_.empty()) on_line_(without_cr(partial_));
  partial_.clear();
}

}  // namespace vmfork::cli
