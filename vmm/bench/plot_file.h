// The file of `--plot FILE.svg`, opened before the bench runs: a path that
// cannot be written is an error at once, not after minutes of benchmark.
// The picture is written when the results are in; if the bench fails, the
// file (empty) is removed again.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace vmfork::bench {

class PlotFile {
 public:
  // Creates or truncates `path` for writing.
  static Result<PlotFile> open(const std::string& path);

  PlotFile(PlotFile&&) noexcept = default;
  PlotFile& operator=(PlotFile&&) noexcept = default;
  // Removes the file if write() was never called.
  ~PlotFile();

  // Writes `svg` and closes the file.
  Result<void> write(std::string_view svg);

 private:
  struct Closer {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  PlotFile(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;  // null once written (or moved from)
  bool written_ = false;
};

}  // namespace vmfork::bench
