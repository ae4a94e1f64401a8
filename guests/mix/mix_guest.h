/* The guest's fixed workload (guests/mix.c): the guest runtime has no way to
 * pass it arguments, so the iteration count is set here, with the CRC the
 * guest checks itself against. tests/guests/mix_work_test.cc checks that
 * constant against mix_run() built for the host. */
#ifndef VMFORK_GUESTS_MIX_MIX_GUEST_H
#define VMFORK_GUESTS_MIX_MIX_GUEST_H

#define MIX_GUEST_ITERATIONS 1000u
#define MIX_GUEST_EXPECTED_CRC 0x69E4u

#endif /* VMFORK_GUESTS_MIX_MIX_GUEST_H */
