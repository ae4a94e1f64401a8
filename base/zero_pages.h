// An array in a private anonymous mapping of its own: every element starts
// as all-zero bytes, and a page of it costs memory only once written. For
// the large per-vCPU tables (translation and decode caches) that a new
// vCPU, and so every clone, would otherwise zero up front: an idle clone
// pays for the pages it uses, not for the table.
//
// Reads never bring a page in: an element on a page not yet written reads
// as a zero T kept aside, so each page's first touch is the write that
// allocates it. Read first, the kernel would map its shared zero page, and
// the write after it would copy that page and flush the TLB of every CPU
// running this process (an IPI each): on this project's PVM hosts, about
// 70 us per page against 11 us for a first write, and a clone's first
// instruction needs pages of two such tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace vmfork {

// `bytes` of zero pages (std::bad_alloc when the host refuses), and back.
void* map_zero_pages(size_t bytes);
void unmap_zero_pages(void* base, size_t bytes);

template <class T>
class ZeroPagesArray {
  // The mapping holds T objects without constructing them only if T is an
  // implicit-lifetime type (C++20): an aggregate with a trivial destructor.
  // All-zero bytes must be a valid T: the owner's "empty".
  static_assert(std::is_aggregate_v<T> && std::is_trivially_destructible_v<T>);
  static constexpr size_t kPageShift = 12;

 public:
  explicit ZeroPagesArray(size_t count)
      : data_(static_cast<T*>(map_zero_pages(count * sizeof(T)))),
        count_(count),
        written_(std::make_unique<uint64_t[]>(bitmap_words(count))) {}
  ZeroPagesArray(ZeroPagesArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        count_(std::exchange(other.count_, 0)),
        written_(std::move(other.written_)) {}
  ZeroPagesArray& operator=(ZeroPagesArray&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    std::swap(written_, other.written_);
    return *this;
  }
  ZeroPagesArray(const ZeroPagesArray&) = delete;
  ZeroPagesArray& operator=(const ZeroPagesArray&) = delete;
  ~ZeroPagesArray() {
    if (data_ != nullptr) unmap_zero_pages(data_, count_ * sizeof(T));
  }

  // Element i; a zero T while it has never been written (no page is touched).
  const T& read(size_t i) const {
    // Writing an element marks every page it spans, so an element with an
    // unmarked page has never been written.
    return page_written(first_page(i)) && page_written(last_page(i)) ? data_[i] : kZero;
  }
  // Element i, to write.
  T& write(size_t i) {
    mark_written(first_page(i));
    mark_written(last_page(i));
    return data_[i];
  }
  size_t size() const { return count_; }
  // The mapping (page-aligned), for residency checks.
  const T* data() const { return data_; }
  // Pages written so far.
  size_t pages_written() const {
    size_t pages = 0;
    for (size_t word = 0; word < bitmap_words(count_); ++word)
      pages += static_cast<size_t>(__builtin_popcountll(written_[word]));
    return pages;
  }

 private:
  static constexpr T kZero{};

  static size_t bitmap_words(size_t count) {
    const size_t pages = ((count * sizeof(T)) >> kPageShift) + 1;
    return (pages + 63) / 64;
  }
  static size_t first_page(size_t i) { return (i * sizeof(T)) >> kPageShift; }
  static size_t last_page(size_t i) { return ((i + 1) * sizeof(T) - 1) >> kPageShift; }
  bool page_written(size_t page) const { return (written_[page / 64] >> (page % 64)) & 1; }
  void mark_written(size_t page) { written_[page / 64] |= uint64_t{1} << (page % 64); }

  T* data_;
  size_t count_;
  std::unique_ptr<uint64_t[]> written_;  // a bit per page of data_
};

}  // namespace vmfork
