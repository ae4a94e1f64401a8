// The UNIX socket file of `vmfork serve`: what may be at the path before we
// bind it, and removing it afterwards only if it is still ours. A daemon
// that died leaves its socket file behind; a live daemon must not have its
// socket stolen; a regular file at the path is a user's mistake we must not
// destroy.
#pragma once

#include <sys/types.h>

#include <filesystem>

#include "base/result.h"

namespace vmfork::api {

// Makes `path` free for bind(): nothing there, or a stale socket (one that
// refuses connections) that it removes. Refuses a live socket, a file that
// is not a socket, and a path longer than sockaddr_un can hold.
Result<void> clear_socket_path(const std::filesystem::path& path);

// The identity of the socket file we bound, so that stop() removes it only
// if nobody has replaced it since.
struct SocketFileId {
  dev_t device = 0;
  ino_t inode = 0;
};
Result<SocketFileId> socket_file_id(const std::filesystem::path& path);
void remove_socket_file_if_ours(const std::filesystem::path& path, SocketFileId id);

}  // namespace vmfork::api
