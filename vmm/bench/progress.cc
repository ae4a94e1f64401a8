#include "vmm/bench/progress.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <mutex>
#include <utility>

namespace vmfork::bench {

namespace {

// Back to the start of the line, and clear to its end (ECMA-48 EL).
constexpr std::string_view kEraseLine = "\r\x1b[K";

}  // namespace

struct Progress::Line {
  explicit Line(std::FILE* stream) : out(stream) {}

  // Callers hold `mutex`.
  void erase_locked() {
    if (!shown) return;
    fmt::print(out, "{}", kEraseLine);
    std::fflush(out);
  }
  void draw_locked() {
    if (!shown) return;
    fmt::print(out, "{}{}", kEraseLine, text);
    // stderr is unbuffered, but a test's stream may not be.
    std::fflush(out);
  }

  std::FILE* const out;
  std::mutex mutex;
  std::string text;    // guarded by mutex
  bool shown = false;  // guarded by mutex
};

namespace {

// In front of the logger's own sinks: each log line is written with the
// progress line erased, and the progress line drawn again below it.
class LineKeepingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  LineKeepingSink(std::shared_ptr<Progress::Line> line, std::vector<spdlog::sink_ptr> sinks)
      : line_(std::move(line)), sinks_(std::move(sinks)) {}

 protected:
  // base_sink holds its mutex here; the line's mutex is taken inside it,
  // never the other way round.
  void sink_it_(const spdlog::details::log_msg& message) override {
    std::lock_guard lock(line_->mutex);
    line_->erase_locked();
    for (const spdlog::sink_ptr& inner : sinks_) {
      if (!inner->should_log(message.level)) continue;
      inner->log(message);
      inner->flush();
    }
    line_->draw_locked();
  }
  void flush_() override {
    for (const spdlog::sink_ptr& inner : sinks_)
      inner->flush();
  }

 private:
  std::shared_ptr<Progress::Line> line_;
  std::vector<spdlog::sink_ptr> sinks_;
};

}  // namespace

ShowProgress progress_wanted_on(int fd) {
  return isatty(fd) == 1 ? ShowProgress::kYes : ShowProgress::kNo;
}

Progress::Progress(std::string_view bench, int total_runs)
    : Progress(bench, total_runs, stderr, progress_wanted_on(STDERR_FILENO)) {}

Progress::Progress(std::string_view bench, int total_runs, std::FILE* out, ShowProgress show)
    : bench_(bench), total_runs_(total_runs), show_(show), line_(std::make_shared<Line>(out)) {
  if (show_ == ShowProgress::kNo) return;
  logger_ = spdlog::default_logger();
  if (!logger_) return;
  logger_sinks_ = logger_->sinks();
  auto sink = std::make_shared<LineKeepingSink>(line_, logger_sinks_);
  logger_->sinks() = {std::move(sink)};
}

Progress::~Progress() {
  clear();
  if (logger_) logger_->sinks() = std::move(logger_sinks_);
}

void Progress::start_run(std::string_view what) {
  const int finished = started_runs_++;
  if (show_ == ShowProgress::kNo) return;
  std::lock_guard lock(line_->mutex);
  line_->text = fmt::format("{}: {}/{} runs, {}", bench_, finished, total_runs_, what);
  line_->shown = true;
  line_->draw_locked();
}

void Progress::clear() {
  std::lock_guard lock(line_->mutex);
  line_->erase_locked();
  line_->shown = false;
}

}  // namespace vmfork::bench
