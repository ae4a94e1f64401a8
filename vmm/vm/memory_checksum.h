// A checksum of a VM's guest memory, to compare engines: the same program on
// the soft and the kvm engine must leave the same bytes. The monitor's area
// below 1 MiB is left out (the engines need not agree on what hardware may
// write there, e.g. descriptor accessed bits).
#pragma once

#include <cstdint>

#include "guestmm/address_space.h"

namespace vmfork {

// A 64-bit hash of guest-physical [1 MiB, end of RAM); pages never touched
// read as zero. The VM's vCPUs must be stopped.
uint64_t memory_checksum(const AddressSpace& space);

}  // namespace vmfork
