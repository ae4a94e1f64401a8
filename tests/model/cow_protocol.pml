/*
 * The COW fault protocol of DESIGN sections 4-6 (and the unshare of
 * section 3), as implemented in guestmm/ and ept/, as a Promela model for
 * spin (tests/model/README.md).
 *
 * Scenario. VM V wrote guest page G and was cloned into VM W: V and W share
 * G's leaf table PT0 (refcount 2), which maps the data frame F0 (refcount 1,
 * held by PT0's entry). Clone cleared W in both root entries; PT0's leaf
 * entry keeps its W (the protection sits one level up).
 *   A, B  vCPUs of V that write G (word 0, word 1): both fault; G's leaf
 *         lock serializes them, one copies F0 and the other retries.
 *   C     vCPU of V that reads word 1 of G NREADS times through its
 *         translation cache (TLB), walking on a miss; it reads through a
 *         stale translation until it services a shootdown, and may be
 *         paused and resumed once.
 *   D     vCPU of W that writes word 1 of G: its frame-lock and refcount
 *         decision races with V's (copy, or write in place).
 * Every allocation may recycle a frame freed at refcount 0 (PT0 when both
 * VMs copied it, F0 when both copied it): GuestMemory::allocate collects.
 *
 * Variants (cpp macros; each changes one step; tests/model/check_model.sh):
 *   EAGER_RELEASE  drop the reference on F before the copy (the first race,
 *                  ProtocolVariant::kEagerRelease)
 *   SINGLE_STAGE   publish F2 writable at once (the second race,
 *                  ProtocolVariant::kSingleStage)
 *   NO_GRACE       the reclaimer frees a retired frame at once
 *   NO_ACK_WAIT    step 6 posts the INVEPT and does not wait for the
 *                  acknowledgements (a mutant: the check can fail)
 *   NO_SERVICE     a waiting vCPU does not service shootdowns (a mutant:
 *                  waits deadlock, DESIGN section 6)
 *   NO_W_CLEAR     unshare's copy keeps W in its entries (a mutant)
 *   IN_PLACE       unshare writes a table whose count fell to 1 in place
 *                  instead of copying it (a mutant: the code until
 *                  2026-12-03; a walk of the other VM can still be inside
 *                  the table, README "In-place unshare")
 *   NO_PAUSE, NREADS=n  a smaller or larger scenario
 *
 * Each step names the code it stands for: file, function, DESIGN step, and
 * in backquotes an exact excerpt of the line (check_model.sh checks that
 * every excerpt still occurs in the named file).
 *
 * Granularity. A step (an atomic block) is one atomic access of the code,
 * or several merged where the merge hides no behaviour (Lipton's
 * reduction): a lock acquire commutes to the right, a release to the left,
 * and an access to data that only the lock holder touches both ways, so
 * "acquire; one access; releases" is one step; other merges say why where
 * they occur. A vCPU that waits spins only when spinning does something
 * (a shootdown to service, an epoch to announce); otherwise it blocks, so a
 * wait that cannot end is an invalid end state (a deadlock), not a cycle.
 * Spin interleaves sequentially consistently: C++ memory orders are not
 * modelled.
 */

#ifndef NREADS
#define NREADS 2
#endif

/* vCPUs; V's shootdown domain is A, B, C (slots 0..2), W's is D. */
#define NV 4
#define VA 0
#define VB 1
#define VC 2
#define VD 3
#define VM_V 0
#define VM_W 1
#define FIRST_VCPU(vm) (vm == VM_V -> VA : VD)
#define LAST_VCPU(vm) (vm == VM_V -> VC : VD)

/* Frames of the pool; 4..7 are fresh (never handed out). */
#define NF 8
#define ROOT_V 0
#define ROOT_W 1
#define PT0 2
#define F0 3
#define FIRST_FRESH 4
#define NONE 255
#define ROOT(vm) (vm == VM_V -> ROOT_V : ROOT_W)

/* An EPT entry in a byte: frame index, present (R/X), W, the leaf lock
 * (EptEntry::kSoftwareLock, bit 11). A table frame holds G's entry in
 * word 0; a data frame's content is two words. */
#define PRESENT 16
#define WRITE 32
#define LOCK 64
#define FRAME(e) ((e) & 15)

/* Ghost frame states. */
#define K_FREE 0
#define K_TABLE 1
#define K_DATA 2
#define K_RETIRED 3

#define OFFLINE 255     /* Reclaimer::kOffline */
#define COLLECT_BATCH 1 /* kCollectBatch is 256; the model retires 2 frames at most */
#define SCRIBBLE 9      /* what a recycled frame holds (Zeroed::kNo: unspecified) */

/* Variants as 0/1 constants tested in guards: an #ifdef that removes lines
 * inside an inline would throw spin's line numbers (and so the trails) off. */
#ifdef EAGER_RELEASE
#define EAGER 1
#else
#define EAGER 0
#endif
#ifdef SINGLE_STAGE
#define SINGLE 1
#else
#define SINGLE 0
#endif
#ifdef NO_ACK_WAIT
#define ACK_WAIT 0
#else
#define ACK_WAIT 1
#endif
#ifdef NO_W_CLEAR
#define W_CLEAR 0
#else
#define W_CLEAR WRITE
#endif
#ifdef NO_PAUSE
#define PAUSE 0
#else
#define PAUSE 1
#endif
#ifdef NO_GRACE
#define GRACE 0
#else
#define GRACE 2
#endif

/* ---- Shared state ---- */
byte mem[NF * 2];   /* frame contents: pool_->data(frame) */
byte ref[NF];       /* FrameTable word: the count bits */
bool flock[NF];     /* FrameTable word: kLockBit (table locks and frame locks) */
byte freel;         /* FramePool free list (recycled frames), a bitmask */
byte next_fresh = FIRST_FRESH; /* FramePool::next_fresh_ */
byte pending;       /* Reclaimer::pending_ */
byte waiting;       /* Reclaimer's list (head_plus_one_), a bitmask */
byte stamp[NF];     /* Reclaimer::Link::stamp */
byte epoch = 2;     /* Reclaimer::epoch_ */
byte last_walk;     /* Reclaimer::last_walk_epoch_ */
bool collecting;    /* Reclaimer::collect_mutex_ */
byte announced[NV]; /* Reclaimer::Participant::announced, one per vCPU */
byte requested[NV]; /* ShootdownTarget::requested_ */
byte acked[NV];     /* ShootdownTarget::acked_ */
bool running[NV];   /* ShootdownTarget::running_ */
byte tlb[NV];       /* TranslationCache: G's entry (0 = none); the owner's */

/* ---- Ghost state, for the assertions only ---- */
byte kind[NF];      /* free, table, data, retired */
byte walking[NV];   /* the table a vCPU's walk holds between its two loads */
byte copying[NV];   /* the frame a vCPU's step-4 copy is reading */
byte view[4];       /* what VM vm's word w must read: view[vm * 2 + w] */
byte owner[NF];     /* a data frame's VM: the one that copied it, or SHARED */
#define SHARED 2

/* The frame G maps to in VM vm's tree now. */
#define LEAF_OF(vm) FRAME(mem[FRAME(mem[ROOT(vm) * 2]) * 2])

/* vCPU p uses a cached translation of G to frame f (or to another frame).
 * A parked vCPU uses none: it flushes what was requested before it runs
 * again (ShootdownTarget::resume). */
#define CACHES(p, f) (running[p] && tlb[p] != 0 && FRAME(tlb[p]) == f)
#define CACHES_OTHER(p, f) (running[p] && tlb[p] != 0 && FRAME(tlb[p]) != f)

/* Nothing of vCPU p can reach frame f: no walk, translation or copy. */
#define NOT_REACHED_BY(p, f) (walking[p] != f && !CACHES(p, f) && copying[p] != f)

/* ---- The vCPU side of shootdowns and reclamation (DESIGN 5, 6) ---- */

/* ept/shootdown.cc ShootdownTarget::service, one step: it reads the ticket,
 * flushes and stores the acknowledgement, touching nothing else; flushing
 * and acknowledging at the instant the ticket is read acknowledges only
 * requests whose leaf change the flush follows. */
#define SERVICE(me) \
  if \
  :: requested[me] != acked[me] -> /* ept/shootdown.cc ShootdownTarget::service: `const uint64_t requested = requested_.load(std::memory_order_seq_cst);` */ \
     tlb[me] = 0;                  /* ept/shootdown.cc ShootdownTarget::service: `tlb_.flush_context(Eptp(context));` */ \
     acked[me] = requested[me]     /* ept/shootdown.cc ShootdownTarget::service: `acked_.store(requested, std::memory_order_release);` */ \
  :: else \
  fi

/* guestmm/reclaimer.h Reclaimer::quiescent: `participant.announced.store(epoch, std::memory_order_release);` */
#define QUIESCENT(me) announced[me] = epoch

#ifdef NO_SERVICE
#define WAIT_USEFUL(me) (running[me] && announced[me] != epoch)
#define ON_WAIT(me) QUIESCENT(me)
#else
#define WAIT_USEFUL(me) (requested[me] != acked[me] || (running[me] && announced[me] != epoch))
/* guestmm/vcpu_memory.h VcpuMemory::on_wait (TargetWaiter::on_wait services, then quiescent) */
/* guestmm/vcpu_memory.h VcpuMemory::on_wait: `if (target_.running()) memory_.reclaimer().quiescent(*participant_);` */
#define ON_WAIT(me) SERVICE(me); if :: running[me] -> QUIESCENT(me) :: else fi
#endif

/* guestmm/vcpu_memory.h VcpuMemory::check, at every basic block: service,
 * then quiescent. One step: between the two the vCPU holds nothing. */
#define CHECK(me) SERVICE(me); QUIESCENT(me)

/* ---- Frames: allocation, release, reclamation (DESIGN 3, 5) ---- */

/* FramePool::release, called back by collect. The model's check: nothing
 * can reach a frame that goes back to the free list (no walk through it,
 * no translation of it, no copy from it, no entry naming it). */
inline pool_release(f_) {
  assert(ref[f_] == 0);
  assert(NOT_REACHED_BY(VA, f_) && NOT_REACHED_BY(VB, f_) && NOT_REACHED_BY(VC, f_) &&
         NOT_REACHED_BY(VD, f_));
  assert(FRAME(mem[ROOT_V * 2]) != f_ && LEAF_OF(VM_V) != f_);
  assert(FRAME(mem[ROOT_W * 2]) != f_ && LEAF_OF(VM_W) != f_);
  kind[f_] = K_FREE;
  freel = freel | (1 << f_);                   /* guestmm/frame_pool.cc FramePool::release: `if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_release,` */
  waiting = waiting & ~(1 << f_);
  pending--                                    /* guestmm/reclaimer.cc Reclaimer::collect: `pending_.fetch_sub(1, std::memory_order_relaxed);` */
}

/* guestmm/reclaimer.cc Reclaimer::collect, two steps. The participant scan
 * and the epoch CAS are one: while the collector holds the mutex nobody
 * else moves the epoch, so an announcement read as current stays current
 * (or offline) and the scan's answer is that of its last load. The list
 * walk is one: pushes racing with it land on the next walk (later, never
 * earlier). */
inline collect() {
  if
  :: atomic { !collecting ->                   /* guestmm/reclaimer.cc Reclaimer::collect: `std::unique_lock lock(collect_mutex_, std::try_to_lock);` */
       collecting = true;
       ep = epoch;                             /* guestmm/reclaimer.cc Reclaimer::collect: `uint64_t epoch = epoch_.load(std::memory_order_seq_cst);` */
       if                                      /* guestmm/reclaimer.cc Reclaimer::collect: `if (announced != kOffline && announced != epoch) return false;` */
       :: (announced[VA] == OFFLINE || announced[VA] == ep) &&
          (announced[VB] == OFFLINE || announced[VB] == ep) &&
          (announced[VC] == OFFLINE || announced[VC] == ep) &&
          (announced[VD] == OFFLINE || announced[VD] == ep) ->
            epoch++; ep = epoch                /* guestmm/reclaimer.cc Reclaimer::collect: `if (everyone_current && epoch_.compare_exchange_strong(epoch, epoch + 1)) ++epoch;` */
       :: else
       fi }
     atomic {
       if
       :: ep != last_walk ->                   /* guestmm/reclaimer.cc Reclaimer::collect: `if (epoch == last_walk_epoch_) return 0;` */
          last_walk = ep;
          cf = 0;                              /* guestmm/reclaimer.cc Reclaimer::collect: `uint64_t cursor = head_plus_one_.exchange(0, std::memory_order_acquire);` */
          do
          :: cf < NF ->
             if
             :: (waiting & (1 << cf)) && stamp[cf] + GRACE <= ep -> /* guestmm/reclaimer.cc Reclaimer::collect: `if (entry.stamp.load(std::memory_order_relaxed) + 2 <= epoch) {` */
                pool_release(cf)               /* guestmm/reclaimer.cc Reclaimer::collect: `release_(frame, static_cast<FrameKind>(entry.kind.load(std::memory_order_relaxed)));` */
             :: else                           /* guestmm/reclaimer.cc Reclaimer::collect: `push(frame);` */
             fi;
             cf++
          :: else -> break
          od
       :: else
       fi;
       collecting = false;                     /* ~unique_lock */
       ep = 0; cf = 0 }
  :: else                                      /* guestmm/reclaimer.cc Reclaimer::collect: `if (!lock.owns_lock()) return 0;` */
  fi
}

/* guestmm/guest_memory.cc GuestMemory::allocate (allocate_data and
 * allocate_table); the frame is left in fr. The pool never runs out here
 * (4 fresh frames, 4 allocations at most), so the exhaustion loop is not
 * modelled. Any recycled frame may come first (the free list is LIFO). */
inline allocate(k_) {
  atomic { need = (freel == 0 && pending >= COLLECT_BATCH) } /* guestmm/guest_memory.cc GuestMemory::allocate: `if (pool_->free_list_empty() && reclaimer_.pending() >= kCollectBatch) reclaimer_.collect();` */
  if
  :: need -> need = false; collect()
  :: else
  fi;
  atomic {                                     /* guestmm/frame_pool.cc FramePool::allocate: `if (std::optional<FrameId> recycled = pop_free()) {` */
    if
    :: freel & 1 -> fr = 0
    :: freel & 2 -> fr = 1
    :: freel & 4 -> fr = 2
    :: freel & 8 -> fr = 3
    :: freel & 16 -> fr = 4
    :: freel & 32 -> fr = 5
    :: freel & 64 -> fr = 6
    :: freel & 128 -> fr = 7
    :: freel == 0 -> assert(next_fresh < NF);
       fr = next_fresh; next_fresh++           /* guestmm/frame_pool.cc FramePool::allocate: `const uint64_t index = next_fresh_.fetch_add(1, std::memory_order_relaxed);` */
    fi;
    freel = freel & ~(1 << fr);
    assert(kind[fr] == K_FREE);
    kind[fr] = k_;
    ref[fr] = 1;                               /* guestmm/frame_table.h FrameTable::set_allocated: `void set_allocated(FrameId frame) { word(frame).store(1, std::memory_order_release); }` */
    if
    :: k_ == K_TABLE -> mem[fr * 2] = 0; mem[fr * 2 + 1] = 0 /* guestmm/frame_pool.cc FramePool::allocate: `if (zeroed == Zeroed::kYes) std::memset(data(*recycled), 0, kPageSize);` */
    :: else -> mem[fr * 2] = SCRIBBLE; mem[fr * 2 + 1] = SCRIBBLE
    fi
  }
}

/* guestmm/guest_memory.cc GuestMemory::retire -> Reclaimer::retire, merged
 * into the put that reached 0 (the caller's atomic block): a stamp read
 * earlier is no later, so the frame is released no later than the code
 * would release it. */
inline retire(f_, k_) {
  assert(ref[f_] == 0 && kind[f_] == k_);
  kind[f_] = K_RETIRED;
  stamp[f_] = epoch;                           /* guestmm/reclaimer.cc Reclaimer::retire: `entry.stamp.store(epoch_.fetch_add(0, std::memory_order_acq_rel), std::memory_order_relaxed);` */
  pending++;                                   /* guestmm/reclaimer.cc Reclaimer::retire: `pending_.fetch_add(1, std::memory_order_relaxed);` */
  waiting = waiting | (1 << f_)                /* guestmm/reclaimer.cc Reclaimer::retire: `push(frame);` */
}

/* ept/ept_tree.cc EptTree::release_entry at level 1, inside an atomic block:
 * a leaf's reference on a data frame. */
inline release_data(f_) {
  last = (ref[f_] == 1); ref[f_]--;            /* ept/ept_tree.cc EptTree::release_entry: `if (!memory_.put(frame)) return;` */
  if
  :: last -> last = false; retire(f_, K_DATA)  /* ept/ept_tree.cc EptTree::release_entry: `memory_.retire(frame, FrameKind::kData);` */
  :: else
  fi
}

/* ept/ept_tree.cc EptTree::release_entry above level 1: a table's
 * reference. Two steps when it was the last: the dead table's entry is
 * read in the put's step (nobody writes a table nobody reaches), then the
 * child's put and both retires. */
inline release_table(t_) {
  atomic {
    last = (ref[t_] == 1); ref[t_]--;          /* ept/ept_tree.cc EptTree::release_entry: `if (!memory_.put(frame)) return;` */
    if
    :: last -> last = false; ce = mem[t_ * 2]  /* ept/ept_tree.cc EptTree::release_entry: `const EptEntry child(entries[i].load(std::memory_order_acquire));` */
    :: else -> ce = 0
    fi }
  if
  :: ce != 0 ->
     atomic {
       if
       :: ce & PRESENT -> release_data(FRAME(ce)) /* ept/ept_tree.cc EptTree::release_entry: `if (child.present()) release_entry(child, level - 1);` */
       :: else
       fi;
       retire(t_, K_TABLE);                    /* ept/ept_tree.cc EptTree::release_entry: `memory_.retire(frame, FrameKind::kTable);` */
       ce = 0 }
  :: else
  fi
}

/* ---- The walk (ept/walker.cc ept_walk via VcpuMemory::translate_slow) ---- */

/* Two loads, the root entry then the leaf entry, permissions ANDed down the
 * walk (DESIGN 3). On success the translation is cached in the same step:
 * translate_slow walks and inserts with no shootdown serviced between. */
inline walk(want_write) {
  atomic { e = mem[ROOT(vm) * 2];              /* ept/walker.cc ept_walk: `memory.entries(table)[ept_index(gfn, level)].load(std::memory_order_acquire));` (level 4) */
    walking[me] = FRAME(e) }
  atomic {
    e2 = mem[FRAME(e) * 2];                    /* ept/walker.cc ept_walk: `memory.entries(table)[ept_index(gfn, level)].load(std::memory_order_acquire));` (level 1) */
    walking[me] = NONE;
    assert(e2 & PRESENT);
    wok = (!want_write || ((e & WRITE) && (e2 & WRITE))); /* ept/walker.cc ept_walk: `allowed = allowed & entry.access();` */
    if
    :: wok ->
       /* Isolation: no translation to a frame private to another VM. */
       assert(owner[FRAME(e2)] == SHARED || owner[FRAME(e2)] == vm);
       tlb[me] = PRESENT | (e & e2 & WRITE) | FRAME(e2); /* guestmm/vcpu_memory.cc VcpuMemory::translate_slow: `tlb_.insert(eptp_, gfn, walk.frame, walk.allowed);` */
       fr = FRAME(e2)
    :: else                                    /* ept/walker.cc ept_walk: `if (!allows(allowed, requested)) return violation(requested, allowed, level);` */
    fi;
    e = 0; e2 = 0 }
}

/* ---- DESIGN section 3: unshare ---- */

/* ept/ept_tree.cc EptTree::unshare_child_locked for VM vm's root entry e,
 * which names the shared table child, whose count the caller read into
 * rc; the caller holds the root's table lock. */
#ifdef IN_PLACE
#define UNSHARE_IN_PLACE(rc) (rc == 1)         /* the mutant: what the code did until 2026-12-03 */
#else
#define UNSHARE_IN_PLACE(rc) false             /* always copy, as DESIGN section 3 says */
#endif
inline unshare_child_locked() {
  if
  :: UNSHARE_IN_PLACE(rc) ->                   /* the mutant: if (memory_.refcount(child) == 1) */
     /* Ours alone but entered read-only: clear W below, then open the
      * entry. The present() load and the fetch_and are one step (present
      * never changes here). Model check: nobody holds the leaf lock of a
      * table that was shared. */
     atomic {
       assert(!(mem[child * 2] & LOCK));
       if
       :: mem[child * 2] & PRESENT -> mem[child * 2] = mem[child * 2] & ~WRITE /* the mutant: child_entries[i].fetch_and(~EptEntry::kWrite) */
       :: else
       fi }
     atomic { mem[ROOT(vm) * 2] = e | WRITE }  /* the mutant: slot.store(entry.with(EptEntry::kWrite).raw()) */
  :: else ->
     allocate(K_TABLE);                        /* ept/ept_tree.cc EptTree::unshare_child_locked: `Result<FrameId> copy = memory_.allocate_table(waiter);` */
     /* The load of the shared entry moves both ways (a table with two
      * references is never written) and the store into the copy is
      * private until the copy is published: one step with the get. */
     atomic {
       cpt = fr; fr = 0;
       ce = mem[child * 2];                    /* ept/ept_tree.cc EptTree::unshare_child_locked: `const EptEntry child_entry(child_entries[i].load(std::memory_order_acquire));` */
       assert(!(ce & LOCK));                   /* ept/ept_tree.cc EptTree::unshare_child_locked: `assert(!child_entry.locked() && "a shared table is never written, so never leaf-locked");` */
       ref[FRAME(ce)]++;                       /* ept/ept_tree.cc EptTree::unshare_child_locked: `memory_.get(child_entry.frame());` */
       mem[cpt * 2] = ce & ~(W_CLEAR | LOCK);  /* ept/ept_tree.cc EptTree::unshare_child_locked: `copy_entries[i].store(child_entry.without(kClear).raw(), std::memory_order_relaxed);` */
       ce = 0 }
     atomic { mem[ROOT(vm) * 2] = PRESENT | WRITE | cpt; cpt = 0 } /* ept/ept_tree.cc EptTree::unshare_child_locked: `slot.store(EptEntry::table(*copy, entry.access() | Access::kWrite).raw(),` */
     release_table(child)                      /* ept/ept_tree.cc EptTree::unshare_child_locked: `release_entry(entry, child_level + 1);` */
  fi
}

/* ---- DESIGN section 4: the write fault ---- */

/* Step 6: ept/shootdown.cc ShootdownBatch. Posting is one step: a request
 * touches only its target's line, and a target that services early is
 * waited for all the same. Waiting is one step: every target's
 * "acknowledged" only goes from false to true here (acked_ grows; a
 * parked vCPU that resumes acknowledges in the same step), so all are true
 * at the end of the scan iff they are all true at once. */
inline shootdown() {
  atomic {
    t = FIRST_VCPU(vm);
    do
    :: t <= LAST_VCPU(vm) && t == me -> tlb[me] = 0; t++ /* ept/shootdown.cc ShootdownBatch::ShootdownBatch: `self->flush_own(eptp);  // our own thread: no request, no wait` */
    :: t <= LAST_VCPU(vm) && t != me ->
       requested[t]++; tk[t] = requested[t]; t++ /* ept/shootdown.cc ShootdownTarget::request: `const uint64_t ticket = requested_.fetch_add(1, std::memory_order_seq_cst) + 1;` */
    :: t > LAST_VCPU(vm) -> t = 0; break
    od }
  do
  :: atomic {                                  /* ept/shootdown.h ShootdownTarget::acknowledged: `return acked_.load(std::memory_order_acquire) >= ticket || !running();` */
       (!ACK_WAIT || vm == VM_W ||
        ((me == VA || acked[VA] >= tk[VA] || !running[VA]) &&
         (me == VB || acked[VB] >= tk[VB] || !running[VB]) &&
         (me == VC || acked[VC] >= tk[VC] || !running[VC]))) ->
       tk[VA] = 0; tk[VB] = 0; tk[VC] = 0; break }
  :: atomic { ACK_WAIT && WAIT_USEFUL(me) -> ON_WAIT(me) } /* ept/shootdown.cc ShootdownBatch::wait: `waiter.on_wait();` */
  od
}

/* guestmm/cow_fault.cc AddressSpace::handle_write_fault, steps 1-9, for
 * vCPU me of VM vm (G is present: the demand-zero branch is not here). */
inline handle_write_fault() {
  /* 1. Unshare the path to G: ept/ept_tree.cc EptTree::unshare_path. */
  atomic {
    e = mem[ROOT(vm) * 2];                     /* ept/ept_tree.cc EptTree::unshare_path: `EptEntry entry(slot.load(std::memory_order_acquire));` */
    if
    :: e & WRITE -> pt = FRAME(e); e = 0       /* fast path: ept/ept_tree.cc EptTree::unshare_path: `table = entry.frame();` */
    :: else
    fi }
  if
  :: pt == 0 ->                                /* ept/ept_tree.cc EptTree::unshare_path: `if (!entry.present() || !entry.writable()) {` */
     do                                        /* table lock: acquire, re-read, count (or release) */
     :: atomic { !flock[ROOT(vm)] ->           /* ept/ept_tree.cc EptTree::unshare_path: `TableLock lock(memory_, table, level, waiter);` */
          flock[ROOT(vm)] = true;
          e = mem[ROOT(vm) * 2];               /* ept/ept_tree.cc EptTree::unshare_path: `entry = EptEntry(slot.load(std::memory_order_acquire));  // another vCPU may have done it` */
          if
          :: e & WRITE -> flock[ROOT(vm)] = false; pt = FRAME(e); e = 0 /* ept/ept_tree.cc ~TableLock: `memory_.unlock(table_);` */
          :: else -> child = FRAME(e);
             rc = ref[child]                   /* the mutant: if (memory_.refcount(child) == 1) */
          fi;
          break }
     :: atomic { flock[ROOT(vm)] && WAIT_USEFUL(me) -> ON_WAIT(me) } /* guestmm/frame_table.h FrameTable::lock: `waiter.on_wait();` */
     od;
     if
     :: pt == 0 ->
        unshare_child_locked();                /* ept/ept_tree.cc EptTree::unshare_path: `if (Result<void> done = unshare_child_locked(slot, entry, level - 1, waiter); !done) {` */
        atomic { e = mem[ROOT(vm) * 2];        /* ept/ept_tree.cc EptTree::unshare_path: `entry = EptEntry(slot.load(std::memory_order_acquire));` */
          flock[ROOT(vm)] = false;             /* ept/ept_tree.cc ~TableLock: `memory_.unlock(table_);` */
          pt = FRAME(e); e = 0; child = 0; rc = 0 }
     :: else
     fi
  :: else
  fi;

  /* 2. Take G's leaf lock; re-read the leaf; if writable, unlock (go to 9).
   * Acquire, re-read and the release are one step. */
  do
  :: atomic { !(mem[pt * 2] & LOCK) ->         /* ept/leaf_lock.cc LeafLock::LeafLock: `if (slot_.compare_exchange_weak(current, current | EptEntry::kSoftwareLock,` */
       ent = mem[pt * 2];                      /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 2: `const EptEntry entry = leaf.entry();` */
       if
       :: ent & WRITE -> ent = 0; pt = 0       /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 2: `if (entry.writable()) {` (and ~LeafLock) */
       :: else -> mem[pt * 2] = ent | LOCK;
          oldf = FRAME(ent)                    /* guestmm/cow_fault.cc AddressSpace::handle_write_fault: `const FrameId old_frame = entry.frame();` */
       fi;
       break }
  :: atomic { (mem[pt * 2] & LOCK) && WAIT_USEFUL(me) -> ON_WAIT(me) } /* ept/leaf_lock.cc LeafLock::LeafLock: `waiter.on_wait();` */
  od;
  if
  :: pt == 0 -> skip                           /* resolved by another vCPU */
  :: else ->
     /* 3. Lock F and read its count: acquire, count and (when copying) the
      * release are one step. */
     do
     :: atomic { !flock[oldf] ->               /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 3: `FrameLock frame_lock(frames, old_frame, waiter);` */
          flock[oldf] = true;
          rc = ref[oldf];                      /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 3: `if (frames.refcount(old_frame) == 1) {` */
          if
          :: rc != 1 -> flock[oldf] = false    /* guestmm/frame_table.h ~FrameLock: `table_.unlock(frame_);` */
          :: else
          fi;
          break }
     :: atomic { flock[oldf] && WAIT_USEFUL(me) -> ON_WAIT(me) } /* guestmm/frame_table.h FrameTable::lock: `waiter.on_wait();` */
     od;
     if
     :: rc == 1 ->
        atomic {
          mem[pt * 2] = ent | WRITE | LOCK;    /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 3: `leaf.add_permissions(Access::kWrite);` */
          flock[oldf] = false;                 /* guestmm/frame_table.h ~FrameLock: `table_.unlock(frame_);` */
          mem[pt * 2] = ent | WRITE;           /* ept/leaf_lock.cc LeafLock::~LeafLock: `slot_.store(entry_.raw(), std::memory_order_release);` */
          ent = 0; pt = 0; oldf = 0; rc = 0 }
     :: else ->
        rc = 0;
        /* 4. Copy F into F2, keeping our reference on F (delayed release). */
        if
        :: EAGER -> atomic { release_data(oldf) } /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 8 moved here (tests/mutation/mutants/eager_release.patch): `tree.release_entry(entry, 1);` */
        :: else
        fi;
        allocate(K_DATA);                      /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 4: `Result<FrameId> copy = memory_.allocate_data(Zeroed::kNo, waiter);` */
        /* guestmm/frame_copy.h copy_frame_polling: the page in two parts,
         * servicing shootdowns before each. A poll is one step with the
         * part after it: no shootdown can be addressed to us while we hold
         * G's leaf lock (the only other initiator in our domain would
         * fault on G), so the poll finds nothing and commutes. */
        atomic {
          cp = fr; fr = 0; owner[cp] = vm;
          SERVICE(me);                         /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 4: `waiter.poll();` */
          copying[me] = oldf;
          mem[cp * 2] = mem[oldf * 2] }        /* guestmm/frame_copy.h copy_frame_polling: `copy_bytes(to + offset, from + offset, kQuarter);` */
        atomic {
          SERVICE(me);                         /* guestmm/frame_copy.h copy_frame_polling: `if (offset != 0) waiter.poll();` */
          mem[cp * 2 + 1] = mem[oldf * 2 + 1]; /* guestmm/frame_copy.h copy_frame_polling: `copy_bytes(to + offset, from + offset, kQuarter);` */
          copying[me] = NONE;
          /* No torn copy: F2 is the page as VM vm sees it, at one instant. */
          assert(mem[cp * 2] == view[vm * 2] && mem[cp * 2 + 1] == view[vm * 2 + 1]) }
        if
        :: SINGLE ->
           atomic { ent = PRESENT | WRITE | cp; /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 5 keeping W (tests/mutation/mutants/single_stage.patch): `leaf.remap_read_only(*copy);` */
             mem[pt * 2] = ent | LOCK }        /* ept/leaf_lock.cc LeafLock::store: `slot_.store(next.raw() | EptEntry::kSoftwareLock, std::memory_order_release);` */
           shootdown();                        /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 5: `ShootdownBatch batch = ShootdownBatch::single_context(vcpus_, eptp(), waiter);` */
           atomic {
             release_data(oldf);               /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 5: `tree.release_entry(entry, 1);` */
             mem[pt * 2] = ent;                /* ept/leaf_lock.cc LeafLock::~LeafLock: `slot_.store(entry_.raw(), std::memory_order_release);` */
             ent = 0; pt = 0; oldf = 0; cp = 0 }
        :: else ->
           /* 5. Stage 1: publish F2 readable, not writable. */
           atomic { ent = PRESENT | cp;        /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 5: `leaf.remap_read_only(*copy);` */
             mem[pt * 2] = ent | LOCK }        /* ept/leaf_lock.cc LeafLock::store: `slot_.store(next.raw() | EptEntry::kSoftwareLock, std::memory_order_release);` */
           /* 6. INVEPT on every vCPU of vm; wait for every acknowledgement. */
           shootdown();                        /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 6: `ShootdownBatch batch = ShootdownBatch::single_context(vcpus_, eptp(), waiter);` */
           /* 7. Stage 2: set W. */
           atomic { ent = ent | WRITE;         /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 7: `leaf.make_writable(invept);` */
             mem[pt * 2] = ent | LOCK }        /* ept/leaf_lock.cc LeafLock::store: `slot_.store(next.raw() | EptEntry::kSoftwareLock, std::memory_order_release);` */
           /* 8. Release our reference on F, then unlock the leaf (the
            * unlock only clears the busy bit, which walks ignore: it moves
            * left). */
           atomic {
             if
             :: !EAGER -> release_data(oldf)   /* guestmm/cow_fault.cc AddressSpace::handle_write_fault, step 8: `tree.release_entry(entry, 1);` */
             :: else
             fi;
             mem[pt * 2] = ent;                /* ept/leaf_lock.cc LeafLock::~LeafLock: `slot_.store(entry_.raw(), std::memory_order_release);` */
             ent = 0; pt = 0; oldf = 0; cp = 0 }
        fi
     fi
  fi
  /* 9. The caller resumes the vCPU, which retries its access. */
}

/* ---- The vCPUs ---- */

/* A guest store of vCPU me of VM vm through frame fr: value val, word w. */
inline guest_store(w, val) {
  atomic {
    assert(kind[fr] == K_DATA);
    /* Nobody copies a frame while it is written (delayed release). */
    assert(copying[VA] != fr && copying[VB] != fr && copying[VC] != fr && copying[VD] != fr);
    /* No write to a frame another address space still maps or caches. */
    assert(LEAF_OF(1 - vm) != fr);
    assert(vm == VM_W || !CACHES(VD, fr));
    assert(vm == VM_V || (!CACHES(VA, fr) && !CACHES(VB, fr) && !CACHES(VC, fr)));
    /* Every running vCPU of vm that caches G caches this frame (the two
     * stages: nobody reads F while F2 is written). */
    assert(vm == VM_W || (!CACHES_OTHER(VA, fr) && !CACHES_OTHER(VB, fr) && !CACHES_OTHER(VC, fr)));
    mem[fr * 2 + w] = val;                     /* tests/race/race_harness.h guest_store: `__atomic_store_n(reinterpret_cast<uint64_t*>(*host), value, __ATOMIC_RELAXED);` */
    view[vm * 2 + w] = val
  }
}

/* A vCPU that writes word w of G once (A, B of V; D of W), then stops. */
proctype Writer(byte me; byte vm; byte w; byte val) {
  byte e, e2, ce, ent, pt, oldf, cp, cpt, child, fr, rc, t, ep, cf;
  byte tk[NV];
  bool wok, last, need;

  atomic { CHECK(me) }                         /* guestmm/vcpu_memory.h VcpuMemory::check: `if (target_.pending()) target_.service();` */
  if
  :: atomic { (tlb[me] & WRITE) -> fr = FRAME(tlb[me]) } /* guestmm/vcpu_memory.h VcpuMemory::translate: `hit != nullptr && allows(hit->allowed, access)) {` */
  :: else ->
     do                                        /* guestmm/vcpu_memory.cc VcpuMemory::translate_slow: `for (;;) {` */
     :: walk(true);
        if
        :: wok -> wok = false; break
        :: else -> handle_write_fault()        /* guestmm/vcpu_memory.cc VcpuMemory::translate_slow: `if (Result<Resolved> fixed = space_.handle_fault(gpa, access, *this); !fixed)` */
        fi
     od
  fi;
  guest_store(w, val);
  atomic { running[me] = false;                /* ept/shootdown.cc ShootdownTarget::park: `running_.store(false, std::memory_order_seq_cst);` */
    announced[me] = OFFLINE;                   /* guestmm/reclaimer.h Reclaimer::offline: `participant.announced.store(kOffline, std::memory_order_release);` */
    fr = 0 }
}

/* C: reads word 1 of G, one basic block at a time, then stops. */
proctype Reader(byte me) {
  byte e, e2, fr, i;
  byte vm = VM_V;
  bool wok, paused;

  do
  :: i < NREADS ->
     atomic { CHECK(me) }                      /* guestmm/vcpu_memory.h VcpuMemory::check: `memory_.reclaimer().quiescent(*participant_);` */
     if
     :: atomic { tlb[me] != 0 -> fr = FRAME(tlb[me]) } /* guestmm/vcpu_memory.h VcpuMemory::translate: `if (const TranslationCache::Hit* hit = tlb_.lookup(eptp_, gpa.gfn());` */
     :: else -> walk(false)                    /* guestmm/vcpu_memory.cc VcpuMemory::translate_slow: `const WalkResult walk = memory_.tree().walk(space_.root(), gfn, access);` */
     fi;
     atomic {
       assert(kind[fr] == K_DATA);
       /* The load sees its VM's last store: no location changes under a
        * reader that B's completed store should have been ordered with. */
       assert(mem[fr * 2 + 1] == view[VM_V * 2 + 1]); /* tests/race/race_harness.h guest_load: `return __atomic_load_n(reinterpret_cast<const uint64_t*>(*host), __ATOMIC_RELAXED);` */
       fr = 0; wok = false; i++ }
     /* Once, between two blocks, C may be paused and resumed (a fork or
      * snapshot request elsewhere, say): initiators stop waiting for it,
      * reclamation moves on without it, and it flushes what was requested
      * meanwhile before it runs again. */
     if
     :: PAUSE && !paused ->
        atomic { paused = true;
          running[me] = false;                 /* ept/shootdown.cc ShootdownTarget::park: `running_.store(false, std::memory_order_seq_cst);` */
          announced[me] = OFFLINE }            /* guestmm/reclaimer.h Reclaimer::offline: `participant.announced.store(kOffline, std::memory_order_release);` */
        /* guestmm/vcpu_memory.cc VcpuMemory::resume, one step: the Dekker
         * pair (running, then requested; requested, then running) leaves
         * no interleaving that one step would not show. */
        atomic { QUIESCENT(me);                /* guestmm/vcpu_memory.cc VcpuMemory::resume: `memory_.reclaimer().quiescent(*participant_);` */
          running[me] = true;                  /* ept/shootdown.cc ShootdownTarget::resume: `running_.store(true, std::memory_order_seq_cst);` */
          SERVICE(me) }                        /* ept/shootdown.cc ShootdownTarget::resume: `service();` */
     :: skip
     fi
  :: else -> break
  od;
  atomic { running[me] = false;                /* ept/shootdown.cc ShootdownTarget::park: `running_.store(false, std::memory_order_seq_cst);` */
    announced[me] = OFFLINE }                  /* guestmm/reclaimer.h Reclaimer::offline: `participant.announced.store(kOffline, std::memory_order_release);` */
}

/* Every frame's count equals the references held on it: one per root
 * holder, one per present entry of a live table. */
#define EXPECTED_REFS(f) \
  ((f == ROOT_V || f == ROOT_W -> 1 : 0) + \
   (FRAME(mem[ROOT_V * 2]) == f -> 1 : 0) + (FRAME(mem[ROOT_W * 2]) == f -> 1 : 0) + \
   (LEAF_OF(VM_V) == f -> 1 : 0) + \
   (LEAF_OF(VM_W) == f && FRAME(mem[ROOT_W * 2]) != FRAME(mem[ROOT_V * 2]) -> 1 : 0))

init {
  byte f;
  atomic {
    /* V wrote G (F0) and was cloned into W, which cleared W in both roots: */
    /* ept/ept_tree.cc EptTree::clone: `source[i].store(entry.without(EptEntry::kWrite).raw(), std::memory_order_release);` */
    kind[ROOT_V] = K_TABLE; ref[ROOT_V] = 1; mem[ROOT_V * 2] = PRESENT | PT0;
    kind[ROOT_W] = K_TABLE; ref[ROOT_W] = 1; mem[ROOT_W * 2] = PRESENT | PT0;
    kind[PT0] = K_TABLE; ref[PT0] = 2; mem[PT0 * 2] = PRESENT | WRITE | F0;
    kind[F0] = K_DATA; ref[F0] = 1; owner[F0] = SHARED;
    f = 0;
    do
    :: f < NV -> running[f] = true; announced[f] = epoch; walking[f] = NONE; copying[f] = NONE; f++
    :: else -> break
    od;
    run Writer(VA, VM_V, 0, 1);
    run Writer(VB, VM_V, 1, 2);
    run Reader(VC);
    run Writer(VD, VM_W, 1, 3)
  }
  _nr_pr == 1;
  /* Afterwards: every store survived, in its own VM only; no lock is held;
   * the counts match the trees; no frame leaked. */
  atomic {
    assert(!(mem[FRAME(mem[ROOT_V * 2]) * 2] & LOCK) && !(mem[FRAME(mem[ROOT_W * 2]) * 2] & LOCK));
    assert(mem[LEAF_OF(VM_V) * 2] == view[VM_V * 2] && mem[LEAF_OF(VM_V) * 2 + 1] == view[VM_V * 2 + 1]);
    assert(mem[LEAF_OF(VM_W) * 2] == view[VM_W * 2] && mem[LEAF_OF(VM_W) * 2 + 1] == view[VM_W * 2 + 1]);
    assert(view[VM_V * 2] == 1 && view[VM_V * 2 + 1] == 2 && view[VM_W * 2 + 1] == 3);
    f = 0;
    do
    :: f < NF ->
       assert(ref[f] == EXPECTED_REFS(f));
       assert((kind[f] == K_TABLE || kind[f] == K_DATA) == (ref[f] > 0));
       assert(!flock[f]);
       f++
    :: else -> break
    od;
    assert(pending == (kind[PT0] == K_RETIRED) + (kind[F0] == K_RETIRED))
  }
}
