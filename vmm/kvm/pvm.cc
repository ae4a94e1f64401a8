#include "vmm/kvm/pvm.h"

#include <sys/stat.h>

namespace vmfork::kvm {

bool pvm_host() {
  struct stat info {};
  return stat("/sys/module/kvm_pvm", &info) == 0 && S_ISDIR(info.st_mode);
}

}  // namespace vmfork::kvm
