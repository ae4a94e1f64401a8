#include "vmm/soft/cpuid_leaves.h"

namespace vmfork::soft {
namespace {

constexpr uint32_t kLeaf1EcxPopcnt = 1u << 23;
constexpr uint32_t kLeaf1EdxTsc = 1u << 4;
constexpr uint32_t kLeaf1EdxCmov = 1u << 15;
constexpr uint32_t kLeaf7EbxBmi1 = 1u << 3;
constexpr uint32_t kExtLeaf1EcxAbm = 1u << 5;
constexpr uint32_t kExtLeaf1EdxLm = 1u << 29;

// Four vendor characters as the little-endian register value.
constexpr uint32_t chars(const char (&s)[5]) {
  return static_cast<uint32_t>(static_cast<unsigned char>(s[0])) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[3])) << 24;
}

}  // namespace

CpuidLeaf cpuid_leaf(uint32_t leaf, uint32_t subleaf) {
  switch (leaf) {
    case 0:
      return {7, chars("Vmfo"), chars("ftVM"), chars("rkSo")};  // ebx, edx, ecx order
    case 1:
      return {0x000006f1, 0, kLeaf1EcxPopcnt, kLeaf1EdxTsc | kLeaf1EdxCmov};
    case 7:
      return subleaf == 0 ? CpuidLeaf{0, kLeaf7EbxBmi1, 0, 0} : CpuidLeaf{};
    case 0x80000000:
      return {0x80000001, 0, 0, 0};
    case 0x80000001:
      return {0, 0, kExtLeaf1EcxAbm, kExtLeaf1EdxLm};
    default:
      return {};
  }
}

}  // namespace vmfork::soft
