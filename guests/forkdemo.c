/* forkdemo: fork a busy multi-vCPU VM and report the guest's view of the
 * fork latency.
 *
 * Every vCPU fills its slice of a shared table; then vCPUs 1.. keep updating
 * it under a lock (one table entry and a running total per update) while
 * vCPU 0 reads the TSC, forks CLONES clones, and reads the TSC again right
 * after the out (DESIGN.md section 8: port 0x510). In every VM the work goes
 * on for a while after the fork (each first write to a table page is a COW
 * fault), then stops, and vCPU 0 checks sum(table) == TABLE_SUM + updates.
 *
 * Output: clone k (1..4) prints "forkdemo clone <k>: fork latency: <ticks>
 * ticks\n" then "forkdemo clone <k> ok\n"; the original prints "forkdemo
 * original: forked 4 clones, table ok\n". Each VM exits 0; the tick count is
 * the only nondeterministic text. A failed check prints "forkdemo <vm>: ..."
 * and exits 1. */
#include "runtime.h"

#define CLONES 4u
#define TABLE_ENTRIES 4096u      /* 32 KiB: 8 pages */
#define TABLE_SUM 22898104320ull /* sum of i*i for i < TABLE_ENTRIES */
#define UPDATES_BEFORE_FORK 2000u
#define UPDATES_AFTER_FORK 4000u

static volatile uint64_t table[TABLE_ENTRIES] __attribute__((aligned(PAGE_SIZE)));
static struct spinlock table_lock __attribute__((aligned(PAGE_SIZE)));

static struct {
  uint64_t updates;      /* table_lock */
  uint64_t stop;         /* written by vCPU 0 */
  uint64_t workers_done; /* lock inc */
} volatile control __attribute__((aligned(PAGE_SIZE)));

static struct barrier start_barrier __attribute__((aligned(PAGE_SIZE)));

/* One update: a pseudo-random entry, chosen by a per-vCPU generator. */
static void update_step(uint64_t* state) {
  *state = *state * 6364136223846793005u + 1442695040888963407u;
  const uint64_t index = (*state >> 33) % TABLE_ENTRIES;
  spin_lock(&table_lock);
  table[index] = table[index] + 1;
  control.updates = control.updates + 1;
  spin_unlock(&table_lock);
}

static void print_vm(uint64_t clone_id) {
  if (clone_id == 0) {
    console_puts("original");
  } else {
    console_puts("clone ");
    console_put_u64(clone_id);
  }
}

static int coordinator(const struct boot_info* bi) {
  const uint32_t vcpus = bi->vcpu_count;
  uint64_t state = 0;
  /* With workers, let them run; alone, do the updates. */
  while (atomic_load64(&control.updates) < UPDATES_BEFORE_FORK) {
    if (vcpus == 1) {
      update_step(&state);
    } else {
      cpu_relax();
    }
  }

  uint64_t tsc_before = 0;
  uint64_t tsc_after = 0;
  const int fork_result = vm_fork_timed(CLONES, &tsc_before, &tsc_after);
  const uint64_t clone_id = boot_clone_id(bi);
  if (fork_result > 0) {
    console_puts("forkdemo clone ");
    console_put_u64(clone_id);
    console_puts(": fork latency: ");
    console_put_i64((int64_t)(tsc_after - tsc_before));
    console_puts(" ticks\n");
  }

  /* vCPU 0 updates too, so every VM writes its table pages after the fork. */
  if (fork_result >= 0) {
    const uint64_t updates0 = atomic_load64(&control.updates);
    while (atomic_load64(&control.updates) < updates0 + UPDATES_AFTER_FORK)
      update_step(&state);
  }
  atomic_store64(&control.stop, 1);
  while (atomic_load64(&control.workers_done) != vcpus - 1)
    cpu_relax();

  if (fork_result < 0) {
    console_puts("forkdemo: fork failed\n");
    return 1;
  }
  console_puts("forkdemo ");
  print_vm(clone_id);
  if ((uint64_t)fork_result != clone_id) {
    console_puts(": vm_fork returned ");
    console_put_u64((uint64_t)fork_result);
    console_puts(" but boot info says clone ");
    console_put_u64(clone_id);
    console_putc('\n');
    return 1;
  }
  uint64_t sum = 0;
  for (uint64_t i = 0; i < TABLE_ENTRIES; i++)
    sum += table[i];
  const uint64_t expected = TABLE_SUM + control.updates;
  if (sum != expected) {
    console_puts(": table sum ");
    console_put_u64(sum);
    console_puts(" expected ");
    console_put_u64(expected);
    console_putc('\n');
    return 1;
  }
  if (clone_id == 0) {
    console_puts(": forked ");
    console_put_u64(CLONES);
    console_puts(" clones, table ok\n");
  } else {
    console_puts(" ok\n");
  }
  return 0;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  const uint32_t vcpus = bi->vcpu_count;
  /* Every vCPU fills its own slice of the table. */
  for (uint64_t i = vcpu; i < TABLE_ENTRIES; i += vcpus)
    table[i] = i * i;
  barrier_wait(&start_barrier, vcpus);
  if (vcpu == 0) return coordinator(bi);

  uint64_t state = vcpu;
  while (atomic_load64(&control.stop) == 0)
    update_step(&state);
  atomic_inc64(&control.workers_done);
  return 0;
}
