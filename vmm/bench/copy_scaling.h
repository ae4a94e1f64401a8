// The machine's own ceiling for the COW bench's 2-thread figure: the same
// page copies, without the protocol, by 1 and by 2 threads. On a host whose
// two cores share one memory path, copying cold pages cannot go twice as
// fast with two threads whatever the protocol does; the ratio measured here
// in the same run says how close to that ceiling the protocol gets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmfork::bench {

class PlainCopyBaseline {
 public:
  // Source and destination of `bytes` each, touched now.
  explicit PlainCopyBaseline(uint64_t bytes);

  // Pages per second for `threads` (1 or 2) threads, each copying every
  // page of its own half once, page by page, after the source was rewritten
  // (as the COW bench writes its space before each round).
  double pages_per_sec(int threads);

 private:
  std::vector<std::byte> source_;
  std::vector<std::byte> target_;
  uint8_t generation_ = 0;
};

}  // namespace vmfork::bench
