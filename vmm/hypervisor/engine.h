// Which engine executes a VM's vCPUs (DESIGN section 2).
#pragma once

#include <cstdint>

namespace vmfork {

enum class Engine : uint8_t {
  kSoft,  // the project's x86-64 interpreter over its own EPT and TLBs
  kKvm,   // KVM vCPUs over the EPT realized into host mappings
};

inline const char* to_string(Engine engine) {
  return engine == Engine::kKvm ? "kvm" : "soft";
}

}  // namespace vmfork
