// The fixed CPUID leaves a soft vCPU reports. Vendor "VmforkSoftVM"; features are only what the
// interpreter executes (no FPU/SSE: guests are built with -mgeneral-regs-only).
//   leaf 0           eax = 7 (highest basic leaf), vendor in ebx, edx, ecx
//   leaf 1           eax = 0x000006f1 (family 6), ecx = POPCNT, edx = TSC | CMOV
//   leaf 7 subleaf 0 ebx = BMI1 (tzcnt)
//   leaf 0x80000000  eax = 0x80000001 (highest extended leaf)
//   leaf 0x80000001  ecx = LZCNT (ABM), edx = LM
// Every other leaf and subleaf reads as zeros.
#pragma once

#include <cstdint>

namespace vmfork::soft {

struct CpuidLeaf {
  uint32_t eax = 0;
  uint32_t ebx = 0;
  uint32_t ecx = 0;
  uint32_t edx = 0;
};

CpuidLeaf cpuid_leaf(uint32_t leaf, uint32_t subleaf);

}  // namespace vmfork::soft
