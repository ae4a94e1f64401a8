#include "base/zero_pages.h"

#include <sys/mman.h>

#include <new>

namespace vmfork {

void* map_zero_pages(size_t bytes) {
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  return base;
}

void unmap_zero_pages(void* base, size_t bytes) {
  ::munmap(base, bytes);
}

}  // namespace vmfork
