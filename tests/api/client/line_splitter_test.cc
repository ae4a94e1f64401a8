// Lines of GET /events out of chunks that end anywhere.
#include "vmm/cli/line_splitter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmfork::cli {
namespace {

TEST(LineSplitter, ALineSplitAcrossChunksIsOneLine) {
  std::vector<std::string> lines;
  LineSplitter splitter([&](std::string_view line) { lines.emplace_back(line); });
  splitter.feed(R"({"seq":1)");
  splitter.feed("}\n{\"seq\":2}\r\n{\"se");
  splitter.feed("q\":3}\n");
  EXPECT_EQ(lines, (std::vector<std::string>{R"({"seq":1})", R"({"seq":2})", R"({"seq":3})"}));
}

TEST(LineSplitter, ALastLineWithoutNewlineComesAtTheEnd) {
  std::vector<std::string> lines;
  LineSplitter splitter([&](std::string_view line) { lines.emplace_back(line); });
  splitter.feed("a\nb");
  EXPECT_EQ(lines, std::vector<std::string>{"a"});
  splitter.finish();
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace vmfork::cli
