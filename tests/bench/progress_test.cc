// vmm/bench/progress: the updating line shown while a long bench runs, and
// its silence when stderr is not a terminal.
#include "vmm/bench/progress.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace vmfork::bench {
namespace {

// What was written to `file` so far.
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file))
    text += static_cast<char>(c);
  return text;
}

class ProgressTest : public testing::Test {
 protected:
  void TearDown() override { std::fclose(out_); }
  std::FILE* out_ = std::tmpfile();
};

TEST_F(ProgressTest, WritesNothingWhenNotShown) {
  {
    Progress progress("bench fork", 2, out_, ShowProgress::kNo);
    progress.start_run("64 MiB x 1 clone(s)");
    progress.clear();
    progress.start_run("64 MiB x 8 clone(s)");
  }
  EXPECT_EQ(contents(out_), "");
}

TEST_F(ProgressTest, ShowsTheRunsFinishedAndTheRunStarting) {
  Progress progress("bench restore", 27, out_, ShowProgress::kYes);
  for (int run = 0; run < 5; ++run)
    progress.start_run("64 MiB x 1 clone(s)");
  progress.start_run("1 GiB x 8 clone(s)");
  const std::string text = contents(out_);
  EXPECT_NE(text.find("\r\x1b[Kbench restore: 5/27 runs, 1 GiB x 8 clone(s)"), std::string::npos)
      << text;
}

TEST_F(ProgressTest, RewritesOneLineWithoutNewlines) {
  Progress progress("bench fork", 3, out_, ShowProgress::kYes);
  progress.start_run("a");
  progress.start_run("b");
  const std::string text = contents(out_);
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_EQ(text, "\r\x1b[Kbench fork: 0/3 runs, a\r\x1b[Kbench fork: 1/3 runs, b");
}

TEST_F(ProgressTest, ErasesItsLineAtTheEnd) {
  { Progress("bench fork", 1, out_, ShowProgress::kYes).start_run("a"); }
  const std::string text = contents(out_);
  EXPECT_EQ(text, "\r\x1b[Kbench fork: 0/1 runs, a\r\x1b[K");
}

TEST_F(ProgressTest, ClearErasesOnceAndTheNextRunRedraws) {
  Progress progress("bench fork", 2, out_, ShowProgress::kYes);
  progress.start_run("a");
  progress.clear();
  progress.clear();
  progress.start_run("b");
  EXPECT_EQ(contents(out_),
            "\r\x1b[Kbench fork: 0/2 runs, a\r\x1b[K\r\x1b[Kbench fork: 1/2 runs, b");
}

TEST_F(ProgressTest, ErasesItsLineAroundEachLogLineAndPutsTheSinksBack) {
  std::ostringstream log;
  auto own_sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = std::make_shared<spdlog::logger>("progress_test", own_sink);
  logger->set_pattern("%v");
  spdlog::set_default_logger(logger);
  {
    Progress progress("bench fork", 1, out_, ShowProgress::kYes);
    progress.start_run("a");
    spdlog::info("vm0 ended");
    EXPECT_EQ(contents(out_),
              "\r\x1b[Kbench fork: 0/1 runs, a\r\x1b[K\r\x1b[Kbench fork: 0/1 runs, a");
  }
  EXPECT_EQ(log.str(), "vm0 ended\n");
  ASSERT_EQ(logger->sinks().size(), 1u);
  EXPECT_EQ(logger->sinks().front(), own_sink);
}

TEST(ProgressWanted, NotOnAFile) {
  std::FILE* file = std::tmpfile();
  EXPECT_EQ(progress_wanted_on(fileno(file)), ShowProgress::kNo);
  std::fclose(file);
}

TEST(ProgressWanted, NotOnAPipe) {
  int ends[2];
  ASSERT_EQ(pipe(ends), 0);
  EXPECT_EQ(progress_wanted_on(ends[1]), ShowProgress::kNo);
  close(ends[0]);
  close(ends[1]);
}

}  // namespace
}  // namespace vmfork::bench
