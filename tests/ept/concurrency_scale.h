// Iteration counts for the concurrency tests (and the randomized model
// test): full in normal builds, smaller under ThreadSanitizer or
// AddressSanitizer, whose CI runs repeat these tests at many times the cost
// per iteration.
#pragma once

namespace vmfork::ept_test {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

constexpr int scaled(int iterations) {
  return kUnderSanitizer ? iterations / 10 : iterations;
}

}  // namespace vmfork::ept_test
