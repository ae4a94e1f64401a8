/* mix_native: the mix workload as a static host program, for `vmfork bench
 * cpu` to time under qemu-x86_64 (user-mode TCG) against the same C code the
 * soft engine runs in the guest.
 *
 *   mix_native [ITERATIONS]     (default: MIX_GUEST_ITERATIONS)
 *
 * Prints "mix iterations <N> crc 0x<crc>\n" (the guest's line) and exits 0. */
#include <stdio.h>
#include <stdlib.h>

#include "mix_guest.h"
#include "mix_work.h"

int main(int argc, char** argv) {
  unsigned long iterations = MIX_GUEST_ITERATIONS;
  if (argc > 2) {
    fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
    return 2;
  }
  if (argc == 2) {
    char* end = NULL;
    iterations = strtoul(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || iterations > 0xFFFFFFFFul) {
      fprintf(stderr, "%s: not an iteration count: %s\n", argv[0], argv[1]);
      return 2;
    }
  }
  static struct mix_workspace workspace;
  const uint16_t crc = mix_run(&workspace, MIX_SEED, (uint32_t)iterations);
  printf("mix iterations %lu crc 0x%x\n", iterations, (unsigned)crc);
  return 0;
}
