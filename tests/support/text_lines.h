// The lines of a text (a command's output, a Prometheus exposition), without
// their newlines, for tests that look for one.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace vmfork::testing {

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

}  // namespace vmfork::testing
