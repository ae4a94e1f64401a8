#include "vmm/loader/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "vmm/boot/guest_layout.h"

namespace vmfork {
namespace {

Error system_error(const std::filesystem::path& path, const char* what, int error) {
  return make_error(ErrorCode::kSystem,
                    std::string(what) + " " + path.string() + ": " + std::strerror(error));
}

// Closes the descriptor on every path out.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<std::vector<std::byte>> read_file(const std::filesystem::path& path) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return system_error(path, "cannot open", errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return system_error(path, "cannot stat", errno);
  if (!S_ISREG(info.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + " is not a regular file");
  }
  const auto size = static_cast<uint64_t>(info.st_size);
  if (size > kMaxRamBytes) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + " has " + std::to_string(size) +
                                                       " bytes, more than the largest guest RAM");
  }
  std::vector<std::byte> bytes(size);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      return system_error(path, "cannot read", errno);
    }
    if (got == 0) break;  // the file shrank under us: keep what is there
    done += static_cast<size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace vmfork
