#include "vmm/bench/host_program.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "vmm/clock.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX declares it nowhere

namespace vmfork::bench {

namespace {

// Both ends of a pipe, closed when it goes out of scope.
struct Pipe {
  std::array<int, 2> fds{-1, -1};
  ~Pipe() {
    for (const int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  void close_end(int end) {
    close(fds.at(static_cast<size_t>(end)));
    fds.at(static_cast<size_t>(end)) = -1;
  }
};

struct SpawnActions {
  posix_spawn_file_actions_t actions{};
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};

}  // namespace

Result<ProgramRun> run_program(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error(ErrorCode::kInvalidArgument, "run_program: no program");
  Pipe out;
  if (pipe2(out.fds.data(), O_CLOEXEC) != 0) return system_error("pipe2", errno);
  SpawnActions spawn;
  // The child's stdout is the pipe's write end (dup2 clears its
  // close-on-exec flag); every other descriptor of ours closes on exec.
  posix_spawn_file_actions_adddup2(&spawn.actions, out.fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&spawn.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  ProgramRun run;
  const uint64_t start = now_ns();
  pid_t pid = -1;
  if (const int error =
          posix_spawn(&pid, argv[0].c_str(), &spawn.actions, nullptr, args.data(), environ);
      error != 0) {
    return system_error("cannot start " + argv[0], error);
  }
  out.close_end(1);  // so that read() sees the end when the child exits
  std::array<char, 4096> buffer;
  for (;;) {
    const ssize_t got = read(out.fds[0], buffer.data(), buffer.size());
    if (got > 0) {
      run.output.append(buffer.data(), static_cast<size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      break;
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return system_error("waitpid for " + argv[0], errno);
  }
  run.ns = now_ns() - start;
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::optional<std::filesystem::path> find_in_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::string_view directories(path);
  while (!directories.empty()) {
    const size_t colon = directories.find(':');
    const std::string_view directory = directories.substr(0, colon);
    directories =
        colon == std::string_view::npos ? std::string_view{} : directories.substr(colon + 1);
    if (directory.empty()) continue;  // not the working directory: only named ones
    std::filesystem::path candidate = std::filesystem::path(directory) / name;
    std::error_code error;
    if (access(candidate.c_str(), X_OK) == 0 &&
        std::filesystem::is_regular_file(candidate, error)) {
      return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace vmfork::bench
