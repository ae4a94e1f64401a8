// An array in a private anonymous mapping of its own: every element starts
// as all-zero bytes, and a page of it costs memory only once written. For
// the large per-vCPU tables (translation and decode caches) that a new
// vCPU, and so every clone, would otherwise zero up front: an idle clone
// pays for the pages it uses, not for the table.
#pragma once

#include <cstddef>
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

 public:
  explicit ZeroPagesArray(size_t count)
      : data_(static_cast<T*>(map_zero_pages(count * sizeof(T)))), count_(count) {}
  ZeroPagesArray(ZeroPagesArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  ZeroPagesArray& operator=(ZeroPagesArray&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  ZeroPagesArray(const ZeroPagesArray&) = delete;
  ZeroPagesArray& operator=(const ZeroPagesArray&) = delete;
  ~ZeroPagesArray() {
    if (data_ != nullptr) unmap_zero_pages(data_, count_ * sizeof(T));
  }

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return count_; }

 private:
  T* data_;
  size_t count_;
};

}  // namespace vmfork
