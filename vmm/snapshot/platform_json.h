// A PC guest's platform state (snapshot_state.h's PlatformSnapshot) in
// state.json's "devices.pc": the engine's chips as a tagged hex blob, COM1's
// and the CMOS RTC's registers by name, so that people can read them.
#pragma once

#include <nlohmann/json.hpp>

#include "vmm/snapshot/json_fields.h"
#include "vmm/snapshot/snapshot_state.h"

namespace vmfork {

nlohmann::json platform_to_json(const PlatformSnapshot& platform);
// Errors go to `fields` (the returned value is then meaningless); every
// register is checked against its width, the receive FIFO's indices against
// its size.
PlatformSnapshot platform_from_json(JsonFields& fields, const JsonFields::Node& node);

}  // namespace vmfork
