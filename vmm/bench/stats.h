// Order statistics of benchmark samples. Figures are medians, never means:
// on a shared 2-core host one sample that was descheduled must not move
// the result.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <vector>

namespace vmfork::bench {

// The middle sample (the upper one of the two for an even count).
template <class T>
T median(std::vector<T> samples) {
  assert(!samples.empty());
  const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
  std::nth_element(samples.begin(), middle, samples.end());
  return *middle;
}

template <class T>
T minimum(const std::vector<T>& samples) {
  assert(!samples.empty());
  return *std::min_element(samples.begin(), samples.end());
}

template <class T>
T maximum(const std::vector<T>& samples) {
  assert(!samples.empty());
  return *std::max_element(samples.begin(), samples.end());
}

}  // namespace vmfork::bench
