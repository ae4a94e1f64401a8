/* race_torn_copy: race 1 of DESIGN.md section 4 (eager release: a page copied
 * while another VM writes it in place) seen from inside the guest, across a
 * fork.
 *
 * Data pages in free memory always hold one value in every word, because
 * writers rewrite a whole page under data_lock. Readers, under the same lock,
 * read a page twice and check that every word equals the page's first word
 * and that the value was written by this VM (tag TAG_BEFORE_FORK, or this
 * VM's own tag after the fork). A torn copy shows up as a page holding two
 * values, a leak from the other VM as a foreign tag.
 *
 * vCPU 0 coordinates and reads; odd vCPUs write; even vCPUs >= 2 read. With
 * one vCPU, vCPU 0 does all of it in turn. vCPU 0 forks one clone while the
 * others keep running, then both VMs carry on over every page (each page's
 * first write after the fork is a COW fault in each VM) and stop.
 *
 * Output, per VM: "race_torn_copy original ok\n" in the original and
 * "race_torn_copy clone 1 ok\n" in the clone, exit 0 in each; a failed check
 * prints "race_torn_copy <vm>: ..." and exits 1. */
#include "runtime.h"

#define DATA_PAGES 64u
#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define WRITES_BEFORE_FORK (2u * DATA_PAGES)
#define WRITES_AFTER_FORK (4u * DATA_PAGES) /* every page rewritten several times */
#define READS_AFTER_FORK (2u * DATA_PAGES)
#define TAG_BEFORE_FORK 0xA0u
#define TAG_AFTER_FORK 0x100u /* + clone_id */

static struct spinlock data_lock __attribute__((aligned(PAGE_SIZE)));

/* The control words live on their own page, away from the lock and the data. */
static struct {
  uint64_t generation;     /* data_lock: last value written */
  uint64_t page_writes;    /* data_lock; read unlocked for progress */
  uint64_t page_reads;     /* lock xadd */
  uint64_t tag;            /* written by vCPU 0 only, right after the fork */
  uint64_t errors;         /* data_lock */
  uint64_t error_page;     /* data_lock: the first error */
  uint64_t error_word;     /* data_lock */
  uint64_t error_expected; /* data_lock */
  uint64_t error_found;    /* data_lock */
  uint64_t stop;           /* written by vCPU 0 */
  uint64_t workers_done;   /* lock inc */
} volatile control __attribute__((aligned(PAGE_SIZE)));

static struct barrier start_barrier __attribute__((aligned(PAGE_SIZE)));

static volatile uint64_t* data_page(const struct boot_info* bi, uint64_t page) {
  return (volatile uint64_t*)(uintptr_t)(page_align_up(bi->free_base) + page * PAGE_SIZE);
}

static void record_error_locked(uint64_t page, uint64_t word, uint64_t expected, uint64_t found) {
  if (control.errors++ == 0) {
    control.error_page = page;
    control.error_word = word;
    control.error_expected = expected;
    control.error_found = found;
  }
}

/* Rewrites the next page, every word with one fresh value. */
static void write_step(const struct boot_info* bi) {
  spin_lock(&data_lock);
  const uint64_t generation = ++control.generation;
  const uint64_t value = (control.tag << 32) | (generation & 0xFFFFFFFFu);
  volatile uint64_t* page = data_page(bi, generation % DATA_PAGES);
  for (uint64_t w = 0; w < WORDS_PER_PAGE; w++)
    page[w] = value;
  control.page_writes = control.page_writes + 1;
  spin_unlock(&data_lock);
}

/* Reads the next page twice under the lock: it must be whole and unchanged. */
static void read_step(const struct boot_info* bi) {
  const uint64_t n = atomic_fetch_add64(&control.page_reads, 1);
  const uint64_t page_index = (n * 7) % DATA_PAGES; /* another order than the writers' */
  spin_lock(&data_lock);
  volatile uint64_t* page = data_page(bi, page_index);
  const uint64_t first = page[0];
  const uint64_t tag = first >> 32;
  if (tag != TAG_BEFORE_FORK && tag != control.tag) {
    record_error_locked(page_index, 0, control.tag << 32, first);
  }
  for (int pass = 0; pass < 2; pass++) {
    for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) {
      const uint64_t found = page[w];
      if (found != first) record_error_locked(page_index, w, first, found);
    }
  }
  spin_unlock(&data_lock);
}

static int worker(unsigned vcpu, const struct boot_info* bi) {
  while (atomic_load64(&control.stop) == 0) {
    if (vcpu % 2 == 1) {
      write_step(bi);
    } else {
      read_step(bi);
    }
  }
  atomic_inc64(&control.workers_done);
  return 0;
}

/* vCPU 0 reads while it waits, and writes too when it is alone. */
static void coordinator_step(const struct boot_info* bi) {
  if (bi->vcpu_count == 1) write_step(bi);
  read_step(bi);
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
  while (atomic_load64(&control.page_writes) < WRITES_BEFORE_FORK)
    coordinator_step(bi);

  const int fork_result = vm_fork(1);
  const uint64_t clone_id = boot_clone_id(bi);
  if (fork_result >= 0) atomic_store64(&control.tag, TAG_AFTER_FORK + clone_id);

  const uint64_t writes0 = atomic_load64(&control.page_writes);
  const uint64_t reads0 = atomic_load64(&control.page_reads);
  while (fork_result >= 0 && (atomic_load64(&control.page_writes) < writes0 + WRITES_AFTER_FORK ||
                              atomic_load64(&control.page_reads) < reads0 + READS_AFTER_FORK)) {
    coordinator_step(bi);
  }
  atomic_store64(&control.stop, 1);
  while (atomic_load64(&control.workers_done) != vcpus - 1)
    cpu_relax();

  console_puts("race_torn_copy ");
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
  if (control.errors != 0) {
    console_puts(": ");
    console_put_u64(control.errors);
    console_puts(" bad words, first in page ");
    console_put_u64(control.error_page);
    console_puts(" word ");
    console_put_u64(control.error_word);
    console_puts(": expected ");
    console_put_hex(control.error_expected);
    console_puts(" found ");
    console_put_hex(control.error_found);
    console_putc('\n');
    return 1;
  }
  console_puts(" ok\n");
  return 0;
}

int guest_main(unsigned vcpu, const struct boot_info* bi) {
  if (bi->free_end < page_align_up(bi->free_base) + DATA_PAGES * PAGE_SIZE) {
    if (vcpu == 0) console_puts("race_torn_copy: not enough free memory\n");
    return 2;
  }
  if (vcpu == 0) {
    control.tag = TAG_BEFORE_FORK;
    const uint64_t value = (uint64_t)TAG_BEFORE_FORK << 32;
    for (uint64_t p = 0; p < DATA_PAGES; p++) {
      volatile uint64_t* page = data_page(bi, p);
      for (uint64_t w = 0; w < WORDS_PER_PAGE; w++)
        page[w] = value;
    }
  }
  barrier_wait(&start_barrier, bi->vcpu_count); /* data ready for everyone */
  return vcpu == 0 ? coordinator(bi) : worker(vcpu, bi);
}
