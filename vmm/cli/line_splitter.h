// Lines out of a byte stream whose pieces end anywhere (GET /events sends
// one JSON object a line, but a chunk may hold half a line or several).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace vmfork::cli {

class LineSplitter {
 public:
  // Called with each complete line, without its '\n' (nor a '\r' before it).
  explicit LineSplitter(std::function<void(std::string_view line)> on_line)
      : on_line_(std::move(on_line)) {}

  void feed(std::string_view bytes);
  // The stream ended: a last line without '\n' is a line too.
  void finish();

 private:
  std::function<void(std::string_view)> on_line_;
  std::string partial_;  // bytes after the last '\n' so far
};

}  // namespace vmfork::cli
