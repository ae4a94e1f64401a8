#include "guestmm/host_mapping.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace vmfork {

namespace {
Result<HostMapping> failed(const char* what, uint64_t bytes) {
  return make_error(ErrorCode::kSystem, std::string(what) + " of " + std::to_string(bytes) +
                                            " bytes failed: " + std::strerror(errno));
}
}  // namespace

Result<HostMapping> HostMapping::anonymous(uint64_t bytes) {
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return failed("anonymous mmap", bytes);
  return HostMapping(static_cast<std::byte*>(base), bytes);
}

Result<HostMapping> HostMapping::shared_file(int fd, uint64_t bytes) {
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (base == MAP_FAILED) return failed("shared mmap", bytes);
  return HostMapping(static_cast<std::byte*>(base), bytes);
}

HostMapping& HostMapping::operator=(HostMapping&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, bytes_);
    base_ = std::exchange(other.base_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

HostMapping::~HostMapping() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

}  // namespace vmfork
