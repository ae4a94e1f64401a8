#include "vmm/bench/linux_baseline.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/types.h"
#include "guestmm/host_mapping.h"
#include "vmm/bench/stats.h"
#include "vmm/clock.h"

namespace vmfork::bench {

namespace {

// Volatile stores: each must reach memory (and fault) exactly once per page.
void write_every_page(std::byte* base, uint64_t bytes, uint8_t value) {
  volatile uint8_t* bytes_at = reinterpret_cast<volatile uint8_t*>(base);
  for (uint64_t offset = 0; offset < bytes; offset += kPageSize)
    bytes_at[offset] = value;
}

// Anonymous private memory with one byte written per 4 KiB page, so every
// page is present and private to this process.
Result<HostMapping> touched_anonymous(uint64_t bytes) {
  Result<HostMapping> mapping = HostMapping::anonymous(bytes);
  if (!mapping) return mapping.error();
  // Huge pages would make fork copy 512 times fewer entries and a COW fault
  // copy 2 MiB: compare like with like (the EPT maps 4 KiB pages).
  if (madvise(mapping->base(), bytes, MADV_NOHUGEPAGE) != 0) {
    return system_error("madvise(MADV_NOHUGEPAGE)");
  }
  write_every_page(mapping->base(), bytes, 1);
  return mapping;
}

Result<void> wait_for_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return system_error("waitpid");
  }
  return Ok{};
}

}  // namespace

Result<uint64_t> linux_fork_ns_median(uint64_t bytes, int repeat) {
  Result<HostMapping> memory = touched_anonymous(bytes);
  if (!memory) return memory.error();
  std::vector<uint64_t> samples;
  for (int i = 0; i < repeat; ++i) {
    const uint64_t start = now_ns();
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    const uint64_t elapsed = now_ns() - start;
    if (pid < 0) return system_error("fork");
    if (Result<void> waited = wait_for_child(pid); !waited) return waited.error();
    samples.push_back(elapsed);
  }
  return median(std::move(samples));
}

Result<double> kernel_cow_ns_per_fault_median(uint64_t bytes, int repeat) {
  const uint64_t pages = bytes / kPageSize;
  std::vector<double> samples;
  for (int i = 0; i < repeat; ++i) {
    // Fresh memory each run: after a run the parent's pages are its own.
    Result<HostMapping> memory = touched_anonymous(bytes);
    if (!memory) return memory.error();
    int release[2];
    if (pipe2(release, O_CLOEXEC) != 0) return system_error("pipe2");
    const pid_t pid = fork();
    if (pid == 0) {
      // Hold every page shared until the parent closes its end.
      close(release[1]);
      char byte;
      while (read(release[0], &byte, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    close(release[0]);
    if (pid < 0) {
      close(release[1]);
      return system_error("fork");
    }
    const uint64_t start = now_ns();
    write_every_page(memory->base(), bytes, 2);
    const uint64_t elapsed = now_ns() - start;
    close(release[1]);
    if (Result<void> waited = wait_for_child(pid); !waited) return waited.error();
    samples.push_back(static_cast<double>(elapsed) / static_cast<double>(pages));
  }
  return median(std::move(samples));
}

}  // namespace vmfork::bench
