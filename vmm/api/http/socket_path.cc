#include "vmm/api/http/socket_path.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace vmfork::api {
namespace {

// Whether a process accepts connections on the socket at `path`.
Result<bool> someone_listens(const std::filesystem::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return system_error("socket", errno);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string text = path.string();
  ::memcpy(address.sun_path, text.c_str(), text.size() + 1);
  const int status = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int error = errno;
  ::close(fd);
  if (status == 0) return true;
  // Nobody bound to the file: its daemon is gone.
  if (error == ECONNREFUSED) return false;
  // A live daemon whose backlog is full still listens.
  if (error == EAGAIN) return true;
  return system_error("cannot tell whether a daemon listens on " + text, error);
}

}  // namespace

Result<void> clear_socket_path(const std::filesystem::path& path) {
  const std::string text = path.string();
  if (text.empty()) return make_error(ErrorCode::kInvalidArgument, "the socket path is empty");
  if (text.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "socket path " + text + " is " + std::to_string(text.size()) +
                          " bytes long; a UNIX socket path holds at most " +
                          std::to_string(sizeof(sockaddr_un{}.sun_path) - 1));
  }
  struct stat status {};
  if (::lstat(text.c_str(), &status) != 0) {
    if (errno == ENOENT) return Ok{};
    return system_error("cannot stat " + text, errno);
  }
  if (!S_ISSOCK(status.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      text + " exists and is not a socket; refusing to replace it");
  }
  auto listens = someone_listens(path);
  if (!listens) return listens.error();
  if (*listens) {
    return make_error(ErrorCode::kInvalidArgument,
                      "another daemon is already listening on " + text);
  }
  if (::unlink(text.c_str()) != 0 && errno != ENOENT) {
    return system_error("cannot remove the stale socket " + text, errno);
  }
  return Ok{};
}

Result<SocketFileId> socket_file_id(const std::filesystem::path& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0)
    return system_error("cannot stat " + path.string(), errno);
  return SocketFileId{status.st_dev, status.st_ino};
}

void remove_socket_file_if_ours(const std::filesystem::path& path, SocketFileId id) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) return;
  if (status.st_dev != id.device || status.st_ino != id.inode) return;
  ::unlink(path.c_str());
}

}  // namespace vmfork::api
