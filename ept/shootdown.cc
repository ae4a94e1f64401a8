#include "ept/shootdown.h"

#include <sched.h>

#include <cassert>
#include <chrono>

#include "ept/test_point.h"

namespace vmfork {

bool ShootdownTarget::service() {
  // Read the ticket before taking the context: a request posted after this
  // load is either flushed now (its context is already set) or seen as
  // still pending on the next check.
  const uint64_t requested = requested_.load(std::memory_order_seq_cst);
  if (requested == acked_.load(std::memory_order_relaxed)) return false;
  // Every request up to `requested` set its context before its ticket
  // (release), so this load sees it.
  const uint64_t context = pending_context_.load(std::memory_order_acquire);
  if (context == kAllContexts) {
    tlb_.flush_all();
  } else if (context != kNoContext) {
    tlb_.flush_context(Eptp(context));
  }
  serviced_.fetch_add(1, std::memory_order_relaxed);
  acked_.store(requested, std::memory_order_release);
  return true;
}

void ShootdownTarget::flush_own(Eptp eptp) {
  if (eptp.valid()) {
    tlb_.flush_context(eptp);
  } else {
    tlb_.flush_all();
  }
}

void ShootdownTarget::park() {
  running_.store(false, std::memory_order_seq_cst);
}

void ShootdownTarget::resume() {
  // seq_cst pairs with request(): an initiator that saw us parked posted its
  // ticket before we load it below, so we flush for it.
  // Store running, then load requested (seq_cst, in service()): a Dekker
  // pair with request()'s fetch_add then running() load, so one of the two
  // sees the other.
  running_.store(true, std::memory_order_seq_cst);
  service();
}

uint64_t ShootdownTarget::request(Eptp eptp) {
  const uint64_t wanted = eptp.valid() ? eptp.raw() : kAllContexts;
  // Widen the context only when it changes: in the common case (the same
  // EPTP again) the line is not written for it.
  uint64_t current = pending_context_.load(std::memory_order_acquire);
  while (current != wanted && current != kAllContexts) {
    const uint64_t next = current == kNoContext ? wanted : kAllContexts;
    if (pending_context_.compare_exchange_weak(current, next, std::memory_order_acq_rel)) break;
  }
  const uint64_t ticket = requested_.fetch_add(1, std::memory_order_seq_cst) + 1;
  if (kick_ && running()) kick_();
  return ticket;
}

void TargetWaiter::on_wait() {
  target_.service();
  // Spin a little, then yield: on a 2-core host the vCPU we wait for may be
  // descheduled, and spinning would only measure the scheduler.
  if (++spins_ % 64 == 0) {
    sched_yield();
  } else {
    cpu_relax();
  }
}

bool ShootdownDomain::add(ShootdownTarget* target) {
  std::lock_guard lock(membership_mutex_);
  const size_t count = count_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < count; ++i) {
    if (targets_[i].load(std::memory_order_relaxed) == nullptr) {
      targets_[i].store(target, std::memory_order_release);
      members_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  if (count == kMaxTargets) return false;
  targets_[count].store(target, std::memory_order_release);
  count_.store(count + 1, std::memory_order_release);
  members_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ShootdownDomain::remove(ShootdownTarget* target) {
  std::lock_guard lock(membership_mutex_);
  const size_t count = count_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < count; ++i) {
    if (targets_[i].load(std::memory_order_relaxed) == target) {
      targets_[i].store(nullptr, std::memory_order_release);
      members_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

ShootdownBatch::ShootdownBatch(ShootdownDomain& domain, Eptp eptp, ShootdownTarget* self)
    : domain_(&domain) {
  test_point(TestPoint::kBeforeShootdownPost);
  const size_t slots = domain.count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < slots; ++i) {
    ShootdownTarget* target = domain.targets_[i].load(std::memory_order_acquire);
    if (target == nullptr) continue;
    if (target == self) {
      self->flush_own(eptp);  // our own thread: no request, no wait
      continue;
    }
    targets_[count_] = target;
    tickets_[count_] = target->request(eptp);
    ++count_;
  }
}

ShootdownBatch ShootdownBatch::single_context(ShootdownDomain& domain, Eptp eptp,
                                              Waiter& initiator) {
  assert(eptp.valid());
  return ShootdownBatch(domain, eptp, initiator.own_shootdown_target());
}

ShootdownBatch ShootdownBatch::all_context(ShootdownDomain& domain, Waiter& initiator) {
  return ShootdownBatch(domain, Eptp(), initiator.own_shootdown_target());
}

ShootdownBatch::ShootdownBatch(ShootdownBatch&& other) noexcept
    : targets_(other.targets_),
      tickets_(other.tickets_),
      count_(other.count_),
      done_(other.done_),
      domain_(other.domain_) {
  other.done_ = true;
}

ShootdownBatch::~ShootdownBatch() {
  assert(done_ && "a shootdown batch was never waited for");
}

InveptDone ShootdownBatch::wait(Waiter& waiter) {
  const auto started = std::chrono::steady_clock::now();
  test_point(TestPoint::kBeforeShootdownWait);
  for (size_t i = 0; i < count_; ++i) {
    while (!targets_[i]->acknowledged(tickets_[i]))
      waiter.on_wait();
  }
  done_ = true;
  const auto waited = std::chrono::steady_clock::now() - started;
  domain_->wait_ns_.fetch_add(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count()),
      std::memory_order_relaxed);
  test_point(TestPoint::kAfterShootdownWait);
  return InveptDone();
}

}  // namespace vmfork
