// gtest printers for ept/ types, so that failures read as frames, accesses
// and entries rather than byte dumps. Found by ADL, hence in namespace vmfork.
#pragma once

#include <cstdio>
#include <ostream>

#include "base/result.h"
#include "base/types.h"
#include "ept/access.h"
#include "ept/ept_entry.h"
#include "ept/table_memory.h"
#include "ept/walker.h"

namespace vmfork {

inline void PrintTo(FrameId frame, std::ostream* os) {
  *os << "FrameId(" << frame.index() << ")";
}
inline void PrintTo(Gfn gfn, std::ostream* os) {
  *os << "Gfn(0x" << std::hex << gfn.value() << std::dec << ")";
}
inline void PrintTo(Access access, std::ostream* os) {
  *os << to_string(access);
}
inline void PrintTo(ErrorCode code, std::ostream* os) {
  *os << to_string(code);
}
inline void PrintTo(FrameKind kind, std::ostream* os) {
  *os << (kind == FrameKind::kTable ? "table" : "data");
}
inline void PrintTo(EptEntry entry, std::ostream* os) {
  *os << "EptEntry{frame " << entry.frame().index() << ", " << to_string(entry.access())
      << (entry.locked() ? ", locked" : "") << ", raw 0x" << std::hex << entry.raw() << std::dec
      << "}";
}
inline void PrintTo(WalkResult::Kind kind, std::ostream* os) {
  switch (kind) {
    case WalkResult::Kind::kTranslation:
      *os << "translation";
      return;
    case WalkResult::Kind::kViolation:
      *os << "violation";
      return;
    case WalkResult::Kind::kMisconfiguration:
      *os << "misconfiguration";
      return;
  }
  *os << "unknown walk result";
}

}  // namespace vmfork
