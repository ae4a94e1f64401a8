// Progress of a long bench on stderr, for the person watching it: one line
// ("bench restore: 5/27 runs, 1 GiB x 8 clones") rewritten in place before
// each run and erased at the end. Only when stderr is a terminal: tests and
// CI capture stderr, and a log full of carriage returns helps nobody.
// While the line is shown, log lines (the monitor logs each VM at info, from
// vCPU threads too) go through a sink that erases the line before them and
// draws it again after, so that no log line starts in the middle of it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
namespace sinks {
class sink;
}  // namespace sinks
}  // namespace spdlog

namespace vmfork::bench {

enum class ShowProgress : uint8_t { kNo, kYes };

// kYes when `fd` is a terminal.
ShowProgress progress_wanted_on(int fd);

class Progress {
 public:
  // On stderr when it is a terminal; silent otherwise.
  Progress(std::string_view bench, int total_runs);
  // Tests pass the stream and the choice. Shown, it puts its sink in front
  // of the default logger's until destroyed: construct it before any thread
  // that logs starts, and destroy it after they all ended.
  Progress(std::string_view bench, int total_runs, std::FILE* out, ShowProgress show);
  ~Progress();

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // A run begins: the line shows the runs finished so far and what this
  // one is (`what`, e.g. "1 GiB x 8 clones").
  void start_run(std::string_view what);

  // Erases the line until the next start_run.
  void clear();

  // The text on screen, shared with the log sink (progress.cc).
  struct Line;

 private:
  std::string bench_;
  int total_runs_;
  int started_runs_ = 0;
  ShowProgress show_;
  std::shared_ptr<Line> line_;
  // The default logger and its own sinks, put back by the destructor.
  std::shared_ptr<spdlog::logger> logger_;
  std::vector<std::shared_ptr<spdlog::sinks::sink>> logger_sinks_;
};

}  // namespace vmfork::bench
