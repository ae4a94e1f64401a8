// Test-only weakenings of the COW protocol, so the race tests can prove
// they catch both races of DESIGN section 4. Compiled only into the
// *_testing libraries (VMFORK_TESTING); the monitor cannot reach them.
#pragma once

#ifdef VMFORK_TESTING
#include <cstdint>
#include <functional>

namespace vmfork {

enum class ProtocolVariant : uint8_t {
  kCorrect,
  kEagerRelease,  // drop the reference on F before copying it (first race)
  kSingleStage,   // publish F2 writable at once (second race)
};

struct ProtocolTestHooks {
  ProtocolVariant variant = ProtocolVariant::kCorrect;
  // Called after the copy decision, before the copy (step 4).
  std::function<void()> before_copy;
  // Called after F2 is published, before the shootdown (between 5 and 6).
  std::function<void()> after_publish;
};

}  // namespace vmfork
#endif
