// The two KVM structures with a variable-length tail that the kvm engine
// uses, with the kernel's layout. <linux/kvm.h> declares their `entries`
// with __DECLARE_FLEX_ARRAY, which in C++ wraps them in a struct holding an
// empty struct: GCC gives that a size, so `entries` moves (to offset 12 or
// 16 instead of 8) and the ioctl numbers, which encode the header's size,
// change. The kernel would refuse those numbers (EINVAL) or read the wrong
// bytes. These definitions and numbers are the C ones.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace vmfork::kvm {

// KVM_MAX_CPUID_ENTRIES of the kernel.
inline constexpr size_t kMaxCpuidEntries = 256;

template <size_t N>
struct CpuidList {
  uint32_t nent = N;
  uint32_t padding = 0;
  std::array<kvm_cpuid_entry2, N> entries{};
};

template <size_t N>
struct MsrList {
  uint32_t nmsrs = N;
  uint32_t pad = 0;
  std::array<kvm_msr_entry, N> entries{};
};

static_assert(offsetof(CpuidList<1>, entries) == 8, "kvm_cpuid2's entries follow 8 bytes");
static_assert(offsetof(MsrList<1>, entries) == 8, "kvm_msrs's entries follow 8 bytes");

// The ioctls, sized by the C headers (8 bytes: the count and its padding).
inline constexpr unsigned long kGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
inline constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
inline constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
inline constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
// kvm_xsave: its 4 KiB legacy region (KVM_GET_XSAVE2's larger areas, for
// AMX state, are not used).
struct Xsave {
  std::array<uint32_t, 1024> region{};
};
inline constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, sizeof(Xsave));
inline constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, sizeof(Xsave));
// kvm_msr_list: a count, then the indices.
inline constexpr unsigned long kGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);

}  // namespace vmfork::kvm
