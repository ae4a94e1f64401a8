#include "vmm/bench/plot_file.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace vmfork::bench {

namespace {

Error file_error(const std::string& path, const char* what) {
  return make_error(ErrorCode::kInvalidArgument,
                    "--plot " + path + ": cannot " + what + " (" + std::strerror(errno) + ")");
}

}  // namespace

Result<PlotFile> PlotFile::open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return file_error(path, "open it for writing");
  return PlotFile(path, file);
}

PlotFile::~PlotFile() {
  // Written, or moved from: nothing to remove.
  if (written_ || !file_) return;
  file_.reset();
  std::remove(path_.c_str());
}

Result<void> PlotFile::write(std::string_view svg) {
  std::FILE* file = file_.get();
  const bool wrote = std::fwrite(svg.data(), 1, svg.size(), file) == svg.size();
  // fclose flushes: its failure is a failed write too.
  const bool closed = std::fclose(file_.release()) == 0;
  if (!wrote || !closed) return file_error(path_, "write it");
  written_ = true;
  return Ok{};
}

}  // namespace vmfork::bench
