// The VM tests' common setup: a monitor whose every engine is a fake
// (fake_engine.h), and a VM booted on it with a layout for `vcpus` vCPUs.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tests/guestmm/test_support.h"
#include "tests/vm/fake_engine.h"
#include "vmm/vm/boot_vm.h"
#include "vmm/vm/monitor.h"

namespace vmfork::testing {

inline constexpr uint64_t kPoolBytes = uint64_t{64} << 20;
inline constexpr uint64_t kRamBytes = uint64_t{4} << 20;

inline std::unique_ptr<Monitor> fake_monitor(FakeHypervisor& engine) {
  // spdlog makes its registry on first use. vmfork's first log line is on
  // its main thread; here it could be on two vCPU threads at once, whose
  // guard inside the uninstrumented libspdlog ThreadSanitizer cannot see.
  spdlog::default_logger();
  return unwrap(Monitor::create(open_fake(engine), kPoolBytes));
}

// Boots `name` with one vCPU per program of `engine`; the code is a
// placeholder (the fake vCPUs run their programs).
inline Result<std::unique_ptr<Vm>> boot_fake(Monitor& monitor, uint32_t vcpus,
                                             const std::string& name = "vm0") {
  Result<GuestLayout> layout = GuestLayout::create(kRamBytes, vcpus);
  if (!layout) return layout.error();
  const std::vector<std::byte> code(16, std::byte{0xf4});
  return boot_code(monitor, Engine::kSoft, name, code, *layout, MapAllRam::kNo);
}

// Boots and launches; the monitor owns the VM.
inline void launch_fake(Monitor& monitor, uint32_t vcpus, const std::string& name = "vm0") {
  std::unique_ptr<Vm> vm = unwrap(boot_fake(monitor, vcpus, name));
  ASSERT_TRUE(IsOk(monitor.launch(std::move(vm))));
}

}  // namespace vmfork::testing
