/* mix: a CPU workload in the shape of embedded benchmarks (linked lists,
 * small integer matrices, a state machine over text, CRC-16), shared by the
 * guest guests/mix.c, the monitor's `vmfork bench cpu` (natively, in
 * process) and the host program mix_native (run under qemu-x86_64). One C
 * source for all three, so the rates they report are of the same work.
 *
 * Pure C: integer only, no library or runtime call, no allocation (the caller
 * owns the workspace), deterministic for a given seed and iteration count on
 * any x86-64 host (no pointer value reaches the result). */
#ifndef VMFORK_GUESTS_MIX_MIX_WORK_H
#define VMFORK_GUESTS_MIX_MIX_WORK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The seed every user of the workload passes: the result is a function of
 * (seed, iterations) only. */
#define MIX_SEED 0x6D69780Au

#define MIX_LIST_NODES 96
#define MIX_MATRIX_N 10
#define MIX_TEXT_BYTES 224

struct mix_node {
  struct mix_node* next;
  int32_t key;
  uint16_t id; /* position when built: sorting by id restores that order */
  uint16_t reserved;
};

/* Everything one run touches (about 3.3 KiB); zeroing it is not needed. */
struct mix_workspace {
  struct mix_node nodes[MIX_LIST_NODES];
  struct mix_node* head;
  int16_t a[MIX_MATRIX_N * MIX_MATRIX_N];
  int16_t b[MIX_MATRIX_N * MIX_MATRIX_N];
  int32_t c[MIX_MATRIX_N * MIX_MATRIX_N];
  char text[MIX_TEXT_BYTES]; /* NUL-terminated list of numbers */
};

/* CRC-16/CCITT-FALSE (polynomial 0x1021, MSB first, no reflection, no final
 * xor) of `n` bytes, continuing from `crc` (0xFFFF to start). */
uint16_t mix_crc16(uint16_t crc, const uint8_t* bytes, uint32_t n);

/* Builds the workspace from `seed`, then runs `iterations` rounds of list
 * find / reverse / merge sort, matrix multiply and add, and the number
 * scanner, each round's results folded into a CRC-16, which it returns. */
uint16_t mix_run(struct mix_workspace* ws, uint32_t seed, uint32_t iterations);

#ifdef __cplusplus
}
#endif

#endif /* VMFORK_GUESTS_MIX_MIX_WORK_H */
