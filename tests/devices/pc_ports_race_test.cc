// vCPUs writing COM1 at once: every byte reaches the console exactly once, and
// the THR-empty interrupt state stays consistent under the device's lock.
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
  std::array<int, 256> seen{};  // written only by console_byte, under COM1's lock
  int rises = 0;                // likewise, by irq_line
  PcPorts ports{{.console_byte = [&](uint8_t byte) { seen[byte]++; },
                 .irq_line = [&](uint32_t, bool level) { rises += level ? 1 : 0; },
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
          // Another vCPU taking the interrupt, as the 8250 handler does.
          ports.in(0x3FA, 1);
          ports.in(0x3FD, 1);
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();

  for (int byte = 0; byte < 256; byte++)
    EXPECT_EQ(seen[static_cast<size_t>(byte)], kRounds) << byte;
  EXPECT_GE(rises, 1);
  EXPECT_EQ(ports.unhandled_accesses(), 0u);
}

}  // namespace
}  // namespace vmfork
