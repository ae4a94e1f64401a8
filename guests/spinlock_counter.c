/* spinlock_counter: every vCPU adds 1 to a counter K times under a spinlock,
 * and K times to a second counter with lock xadd and no lock. vCPU 0 waits for
 * every vCPU (a done counter) and checks both equal vcpus * K.
 * Output: "counter ok <vcpus*K>\n" and exit 0; on a mismatch
 * "counter mismatch locked <a> atomic <b> expected <n>\n" and exit 1. */
#include "runtime.h"

#define ITERATIONS_PER_VCPU 20000u

/* Each shared word on its own page, away from the others and from the code. */
static struct spinlock counter_lock __attribute__((aligned(PAGE_SIZE)));
static volatile uint64_t locked_counter __attribute__((aligned(PAGE_SIZE))); /* counter_lock */
static volatile uint64_t atomic_counter __attribute__((aligned(PAGE_SIZE))); /* lock xadd */
static volatile uint64_t vcpus_done __attribute__((aligned(PAGE_SIZE)));     /* lock inc */
static struct barrier start_barrier __attribute__((aligned(PAGE_SIZE)));

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  const uint32_t vcpus = bi->vcpu_count;
  barrier_wait(&start_barrier, vcpus); /* start together to contend */

  for (uint32_t i = 0; i < ITERATIONS_PER_VCPU; i++) {
    spin_lock(&counter_lock);
    /* A plain read-modify-write: only the lock makes it safe. */
    locked_counter = locked_counter + 1;
    spin_unlock(&counter_lock);
    atomic_fetch_add64(&atomic_counter, 1);
  }
  atomic_inc64(&vcpus_done);
  if (vcpu != 0) return 0;

  while (atomic_load64(&vcpus_done) != vcpus)
    cpu_relax();
  const uint64_t expected = (uint64_t)vcpus * ITERATIONS_PER_VCPU;
  const uint64_t locked = atomic_load64(&locked_counter);
  const uint64_t atomic = atomic_load64(&atomic_counter);
  if (locked == expected && atomic == expected) {
    console_puts("counter ok ");
    console_put_u64(expected);
    console_putc('\n');
    return 0;
  }
  console_puts("counter mismatch locked ");
  console_put_u64(locked);
  console_puts(" atomic ");
  console_put_u64(atomic);
  console_puts(" expected ");
  console_put_u64(expected);
  console_putc('\n');
  return 1;
}
