// vCPUs writing COM1 at once: every byte reaches the console exactly once, and
// the interrupt line's changes alternate, because the callbacks run one at a
// time under COM1's lock (they append to plain vectors, as a console does).
#include <gtest/gtest.h>

#include <array>
#include <barrier>
#include <thread>
#include <vector>

#include "vmm/devices/pc_ports.h"

namespace vmfork {
namespace {

constexpr int kThreads = 4;
constexpr int kBytesPerThread = 256 / kThreads;  // thread t writes t*64 .. t*64+63
constexpr int kRounds = 1000;

TEST(PcPortsRaceTest, ConcurrentCom1WritesProduceEveryByteOnce) {
  std::vector<uint8_t> console;  // appended only by console_byte, under COM1's lock
  std::vector<bool> levels;      // likewise, by irq_line
  PcPorts ports{{.console_byte = [&](uint8_t byte) { console.push_back(byte); },
                 .irq_line = [&](uint32_t, bool level) { levels.push_back(level); },
                 .reset = {}}};
  ports.out(0x3FC, 1, 0x08);  // OUT2
  ports.out(0x3F9, 1, 0x02);  // ETBEI

  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int round = 0; round < kRounds; round++) {
        for (int i = 0; i < kBytesPerThread; i++) {
          ports.out(0x3F8, 1, static_cast<uint32_t>(t * kBytesPerThread + i));
          // Taking the interrupt as the 8250 handler does: IIR, then LSR.
          ports.in(0x3FA, 1);
          ports.in(0x3FD, 1);
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();

  std::array<int, 256> seen{};
  for (uint8_t byte : console)
    seen[byte]++;
  EXPECT_EQ(console.size(), size_t{256} * kRounds);
  for (size_t byte = 0; byte < seen.size(); byte++)
    EXPECT_EQ(seen[byte], kRounds) << byte;
  ASSERT_FALSE(levels.empty());
  for (size_t i = 0; i < levels.size(); i++)
    ASSERT_EQ(levels[i], i % 2 == 0) << i;
  EXPECT_EQ(ports.unhandled_accesses(), 0u);
}

}  // namespace
}  // namespace vmfork
