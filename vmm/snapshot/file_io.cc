#include "vmm/snapshot/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmfork {

Error system_error(const std::filesystem::path& path, const std::string& what, int error) {
  return make_error(ErrorCode::kSystem, path.string() + ": " + what + ": " + std::strerror(error));
}

Result<std::string> read_text_file(const std::filesystem::path& path, uint64_t max_bytes) {
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return system_error(path, "cannot open", errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return system_error(path, "cannot stat", errno);
  if (!S_ISREG(info.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + ": not a regular file");
  }
  const auto size = static_cast<uint64_t>(info.st_size);
  if (size > max_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      path.string() + ": " + std::to_string(size) + " bytes, more than the " +
                          std::to_string(max_bytes) + " such a file can have");
  }
  std::string text(size, '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t got =
        ::pread(fd.get(), text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return system_error(path, "cannot read", errno);
    }
    if (got == 0) break;  // shrank under us: the JSON parser will refuse what is left
    done += static_cast<size_t>(got);
  }
  text.resize(done);
  return text;
}

Result<void> write_new_file(const std::filesystem::path& path, const std::string& text) {
  const FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return system_error(path, "cannot create", errno);
  if (Result<void> written = write_at(fd, path, std::as_bytes(std::span(text)), 0); !written.ok()) {
    return written;
  }
  if (::fdatasync(fd.get()) != 0) return system_error(path, "cannot flush", errno);
  return Ok{};
}

Result<void> write_at(const FileDescriptor& fd, const std::filesystem::path& path,
                      std::span<const std::byte> bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t put = ::pwrite(fd.get(), bytes.data() + done, bytes.size() - done,
                                 static_cast<off_t>(offset + done));
    if (put < 0) {
      if (errno == EINTR) continue;
      return system_error(path, "cannot write at offset " + std::to_string(offset + done), errno);
    }
    if (put == 0) {  // no progress and no errno: do not spin
      return system_error(path, "cannot write at offset " + std::to_string(offset + done), EIO);
    }
    done += static_cast<size_t>(put);
  }
  return Ok{};
}

Result<void> sync_directory(const std::filesystem::path& dir) {
  const FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return system_error(dir, "cannot open", errno);
  if (::fsync(fd.get()) != 0) return system_error(dir, "cannot flush", errno);
  return Ok{};
}

}  // namespace vmfork
