/* race_stale_read: race 2 of DESIGN.md section 4 (a copy published writable
 * before every vCPU flushed its stale translation) seen from inside the guest,
 * after a fork.
 *
 * Each data page has a locked word (word 0, guarded by data_lock) and 511
 * unlocked words. All roles work on the same current page, which moves on
 * every HOLDS_PER_PAGE holds of role A:
 *   A (reader)        takes the lock, reads the locked word READS_PER_HOLD
 *                     times and checks it never changes while the lock is held;
 *   B (free writer)   writes unlocked words of the page, never the locked one;
 *   C (locked writer) increments the locked word, only while holding the lock.
 * After the fork every page is shared, so the first write to each page (by B
 * or C) is a COW fault while A may hold a translation to the old frame. If the
 * copy became writable before A flushed, C's increment lands in the copy and
 * A sees the locked word change under the lock when its stale entry goes.
 *
 * Roles: vCPU 1 = A, 2 = B, 3 = C, 4 and up = A; vCPU 0 coordinates (it forks)
 * and plays whichever roles have no vCPU (all three with one vCPU).
 *
 * Output, per VM: "race_stale_read original ok\n" in the original and
 * "race_stale_read clone 1 ok\n" in the clone, exit 0 in each; a change under
 * the lock prints "race_stale_read <vm>: ..." and exits 1. */
#include "runtime.h"

#define DATA_PAGES 128u
#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define HOLDS_PER_PAGE 4u
#define READS_PER_HOLD 16u
#define PAGES_BEFORE_FORK 16u
#define PAGES_AFTER_FORK (DATA_PAGES + DATA_PAGES / 2) /* every page at least once */
#define LOCKED_WORD 0u

enum role { ROLE_A = 1u, ROLE_B = 2u, ROLE_C = 4u };

static struct spinlock data_lock __attribute__((aligned(PAGE_SIZE)));

/* The control words live on their own page, away from the lock and the data. */
static struct {
  uint64_t holds;         /* lock xadd by role A; the current page is holds / HOLDS_PER_PAGE */
  uint64_t changes;       /* data_lock */
  uint64_t change_page;   /* data_lock: the first change seen */
  uint64_t change_before; /* data_lock */
  uint64_t change_after;  /* data_lock */
  uint64_t stop;          /* written by vCPU 0 */
  uint64_t workers_done;  /* lock inc */
} volatile control __attribute__((aligned(PAGE_SIZE)));

static struct barrier start_barrier __attribute__((aligned(PAGE_SIZE)));

static volatile uint64_t* data_page(const struct boot_info* bi, uint64_t page) {
  return (volatile uint64_t*)(uintptr_t)(page_align_up(bi->free_base) + page * PAGE_SIZE);
}

static uint64_t current_page(void) {
  return (atomic_load64(&control.holds) / HOLDS_PER_PAGE) % DATA_PAGES;
}

static void role_a_step(const struct boot_info* bi) {
  const uint64_t hold = atomic_fetch_add64(&control.holds, 1);
  const uint64_t page_index = (hold / HOLDS_PER_PAGE) % DATA_PAGES;
  volatile uint64_t* page = data_page(bi, page_index);
  spin_lock(&data_lock);
  const uint64_t before = page[LOCKED_WORD];
  for (unsigned r = 0; r < READS_PER_HOLD; r++) {
    cpu_relax(); /* widen the window in which a stale translation can be flushed */
    const uint64_t after = page[LOCKED_WORD];
    if (after != before && control.changes++ == 0) {
      control.change_page = page_index;
      control.change_before = before;
      control.change_after = after;
    }
  }
  spin_unlock(&data_lock);
}

static void role_b_step(const struct boot_info* bi, uint64_t* sequence) {
  const uint64_t n = (*sequence)++;
  volatile uint64_t* page = data_page(bi, current_page());
  page[1 + n % (WORDS_PER_PAGE - 1)] = n; /* never LOCKED_WORD */
}

static void role_c_step(const struct boot_info* bi) {
  spin_lock(&data_lock);
  volatile uint64_t* page = data_page(bi, current_page());
  page[LOCKED_WORD] = page[LOCKED_WORD] + 1;
  spin_unlock(&data_lock);
}

static void run_roles(const struct boot_info* bi, unsigned roles, uint64_t* sequence) {
  if (roles & ROLE_B) role_b_step(bi, sequence);
  if (roles & ROLE_C) role_c_step(bi);
  if (roles & ROLE_A) role_a_step(bi);
}

static int worker(unsigned vcpu, const struct boot_info* bi) {
  const unsigned roles = vcpu == 2 ? ROLE_B : vcpu == 3 ? ROLE_C : ROLE_A;
  uint64_t sequence = (uint64_t)vcpu << 32;
  while (atomic_load64(&control.stop) == 0)
    run_roles(bi, roles, &sequence);
  atomic_inc64(&control.workers_done);
  return 0;
}

static void print_vm(uint64_t clone_id) {
  if (clone_id == 0) {
    console_puts("original");
  } else {
    console_puts("clone ");
    console_put_u64(clone_id);
  }
}

/* Spins (or plays the missing roles) until role A has moved on `pages` pages. */
static void wait_pages(const struct boot_info* bi, unsigned roles, uint64_t* sequence,
                       uint64_t from_hold, uint64_t pages) {
  while (atomic_load64(&control.holds) < from_hold + pages * HOLDS_PER_PAGE) {
    if (roles != 0) {
      run_roles(bi, roles, sequence);
    } else {
      cpu_relax();
    }
  }
}

static int coordinator(const struct boot_info* bi) {
  const uint32_t vcpus = bi->vcpu_count;
  unsigned roles = 0; /* the roles no other vCPU plays */
  if (vcpus < 2) roles |= ROLE_A;
  if (vcpus < 3) roles |= ROLE_B;
  if (vcpus < 4) roles |= ROLE_C;
  uint64_t sequence = 0;

  wait_pages(bi, roles, &sequence, 0, PAGES_BEFORE_FORK);
  const int fork_result = vm_fork(1);
  const uint64_t clone_id = boot_clone_id(bi);
  if (fork_result >= 0) {
    wait_pages(bi, roles, &sequence, atomic_load64(&control.holds), PAGES_AFTER_FORK);
  }
  atomic_store64(&control.stop, 1);
  while (atomic_load64(&control.workers_done) != vcpus - 1)
    cpu_relax();

  console_puts("race_stale_read ");
  print_vm(clone_id);
  if (fork_result < 0) {
    console_puts(": fork failed\n");
    return 1;
  }
  if ((uint64_t)fork_result != clone_id) {
    console_puts(": vm_fork returned ");
    console_put_u64((uint64_t)fork_result);
    console_puts(" but boot info says clone ");
    console_put_u64(clone_id);
    console_putc('\n');
    return 1;
  }
  if (control.changes != 0) {
    console_puts(": locked word changed under the lock ");
    console_put_u64(control.changes);
    console_puts(" times, first in page ");
    console_put_u64(control.change_page);
    console_puts(": ");
    console_put_hex(control.change_before);
    console_puts(" -> ");
    console_put_hex(control.change_after);
    console_putc('\n');
    return 1;
  }
  console_puts(" ok\n");
  return 0;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (bi->free_end < page_align_up(bi->free_base) + DATA_PAGES * PAGE_SIZE) {
    if (vcpu == 0) console_puts("race_stale_read: not enough free memory\n");
    return 2;
  }
  if (vcpu == 0) {
    for (uint64_t p = 0; p < DATA_PAGES; p++) {
      volatile uint64_t* page = data_page(bi, p);
      for (uint64_t w = 0; w < WORDS_PER_PAGE; w++)
        page[w] = 0;
    }
  }
  barrier_wait(&start_barrier, bi->vcpu_count); /* data ready for everyone */
  return vcpu == 0 ? coordinator(bi) : worker(vcpu, bi);
}
