#include "vmm/cli/engine_choice.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "vmm/cli/choice_arg.h"
#include "vmm/cli/size_arg.h"

namespace vmfork::cli {

uint64_t default_pool_bytes() {
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return uint64_t{4} << 30;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) >> 20 << 20;
}

Result<Engine> choose_engine(EngineChoice wanted) {
  if (wanted == EngineChoice::kSoft) return Engine::kSoft;
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  const int open_errno = errno;
  if (kvm >= 0) {
    close(kvm);
    return Engine::kKvm;
  }
  if (wanted == EngineChoice::kKvm) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("--engine kvm: cannot open /dev/kvm: {} (use --engine soft, "
                                  "or tests/kvm/nested.sh on a host without KVM)",
                                  std::strerror(open_errno)));
  }
  return Engine::kSoft;  // auto, without /dev/kvm
}

void add_engine_options(CLI::App& command, EngineChoice& engine, uint64_t& pool_bytes) {
  command
      .add_option("--pool", pool_bytes,
                  "Frame pool shared by every VM and clone (default: the host's available "
                  "memory); a VM that needs more fails with \"frame pool exhausted\"")
      ->transform(size_transform())
      ->type_name("SIZE");
  command
      .add_option("--engine", engine,
                  "auto (kvm when /dev/kvm opens, else soft), soft (the x86-64 interpreter), "
                  "or kvm (KVM vCPUs; fails when /dev/kvm does not open) (default: auto)")
      ->transform(choice_transform<EngineChoice>({{"auto", EngineChoice::kAuto},
                                                  {"soft", EngineChoice::kSoft},
                                                  {"kvm", EngineChoice::kKvm}}))
      ->type_name("auto|soft|kvm");
}

}  // namespace vmfork::cli
