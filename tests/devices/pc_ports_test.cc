// PcPorts: which device answers which port, and what nothing answers.
#include "vmm/devices/pc_ports.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace vmfork {
namespace {

using namespace std::chrono;

class PcPortsTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> console_;
  std::vector<std::pair<uint32_t, bool>> irqs_;
  int resets_ = 0;
  PcPorts ports_{{.console_byte = [this](uint8_t byte) { console_.push_back(byte); },
                  .irq_line = [this](uint32_t gsi, bool level) { irqs_.emplace_back(gsi, level); },
                  .reset = [this] { resets_++; }},
                 [] { return sys_days{year{2026} / December / 4} + hours{18}; }};
};

TEST_F(PcPortsTest, Com1WritesReachTheConsole) {
  ports_.out(0x3F8, 1, 'o');
  ports_.out(0x3F8, 1, 'k');
  EXPECT_EQ(console_, (std::vector<uint8_t>{'o', 'k'}));
  EXPECT_EQ(ports_.unhandled_accesses(), 0u);
}

TEST_F(PcPortsTest, Com1RegistersAreAtTheirPorts) {
  ports_.out(0x3FF, 1, 0x5A);
  EXPECT_EQ(ports_.in(0x3FF, 1), 0x5Au);
  EXPECT_EQ(ports_.in(0x3FD, 1), 0x60u);  // LSR
  EXPECT_EQ(ports_.in(0x3FE, 1), 0xB0u);  // MSR
  EXPECT_EQ(ports_.in(0x3FA, 1), 0x01u);  // IIR
}

TEST_F(PcPortsTest, Com1InterruptIsGsi4) {
  ports_.out(0x3FC, 1, 0x08);  // OUT2
  ports_.out(0x3F9, 1, 0x02);  // ETBEI
  ports_.in(0x3FA, 1);         // acknowledge
  EXPECT_EQ(irqs_, (std::vector<std::pair<uint32_t, bool>>{{4, true}, {4, false}}));
}

TEST_F(PcPortsTest, WideAccessToCom1TouchesOnlyThePortsRegister) {
  ports_.out(0x3FF, 4, 0x11223344);
  EXPECT_EQ(ports_.in(0x3FF, 1), 0x44u);
  EXPECT_EQ(ports_.in(0x3FF, 2), 0xFF44u);
  EXPECT_EQ(ports_.in(0x3FF, 4), 0xFFFFFF44u);
  ports_.out(0x3F8, 2, 0x4241);
  EXPECT_EQ(console_, (std::vector<uint8_t>{0x41}));
  EXPECT_EQ(ports_.in(0x3F9, 1), 0x00u);  // IER untouched by the upper byte
}

TEST_F(PcPortsTest, ACloneStartsFromTheDevicesRegistersWithoutAnInterruptEdge) {
  ports_.out(0x3FB, 1, 0x83);  // DLAB on, 8N1
  ports_.out(0x3F8, 1, 0x01);  // divisor 115200
  ports_.out(0x3FB, 1, 0x03);
  ports_.out(0x3FF, 1, 0x5A);  // scratch
  ports_.out(0x3FA, 1, 0x01);  // FIFO on
  ports_.out(0x3FC, 1, 0x08);  // OUT2
  ports_.out(0x3F9, 1, 0x02);  // ETBEI: THR-empty pending, line up
  ports_.out(0x70, 1, 0x40);   // a plain RAM byte
  ports_.out(0x71, 1, 0x77);
  ports_.out(0x70, 1, 0x0B);  // index left on register B
  const PcPorts::State state = ports_.save();

  std::vector<std::pair<uint32_t, bool>> clone_irqs;
  PcPorts clone({.console_byte = {},
                 .irq_line = [&](uint32_t gsi, bool level) { clone_irqs.emplace_back(gsi, level); },
                 .reset = {}},
                [] { return sys_days{year{2026} / December / 4}; });
  clone.load(state);
  EXPECT_TRUE(clone_irqs.empty()) << "the clone's interrupt controller holds the level already";
  EXPECT_EQ(clone.in(0x71, 1), ports_.in(0x71, 1)) << "register B, through the kept index";
  EXPECT_EQ(clone.in(0x3FF, 1), 0x5Au);
  EXPECT_EQ(clone.in(0x3FB, 1), 0x03u);
  EXPECT_EQ(clone.in(0x3FA, 1), 0xC2u) << "FIFO on, THR-empty pending";
  EXPECT_EQ(clone_irqs, (std::vector<std::pair<uint32_t, bool>>{{4, false}}));
  clone.out(0x70, 1, 0x40);
  EXPECT_EQ(clone.in(0x71, 1), 0x77u);
  clone.out(0x3FB, 1, 0x83);
  EXPECT_EQ(clone.in(0x3F8, 1), 0x01u) << "the divisor latch";
}

TEST_F(PcPortsTest, I8042ReadsEmptyAndResetsOnFe) {
  EXPECT_EQ(ports_.in(0x64, 1), 0x00u);
  EXPECT_EQ(ports_.in(0x60, 1), 0x00u);
  ports_.out(0x64, 1, 0xAA);  // self test: ignored
  ports_.out(0x60, 1, 0xF4);
  EXPECT_EQ(resets_, 0);
  ports_.out(0x64, 1, 0xFE);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(ports_.unhandled_accesses(), 0u);
}

TEST_F(PcPortsTest, RtcAnswersAt70And71) {
  ports_.out(0x70, 1, 0x04);
  EXPECT_EQ(ports_.in(0x71, 1), 0x18u);
  ports_.out(0x70, 1, 0x80 | 0x0B);  // NMI masked, as Linux's CMOS_READ does
  EXPECT_EQ(ports_.in(0x71, 1), 0x02u);
  ports_.out(0x70, 1, 0x32);
  EXPECT_EQ(ports_.in(0x71, 1), 0x20u);
  EXPECT_EQ(ports_.unhandled_accesses(), 0u);
}

TEST_F(PcPortsTest, PostPortWritesAreIgnored) {
  ports_.out(0x80, 1, 0x00);
  EXPECT_EQ(ports_.unhandled_accesses(), 0u);
  EXPECT_TRUE(console_.empty());
}

TEST_F(PcPortsTest, UnhandledPortsReadAllOnesOfTheAccessSize) {
  for (int port_number : {0x2F8, 0x2FD, 0x3E8, 0x2E8, 0xCF8, 0xCFC, 0xCFF, 0x1234}) {
    const auto port = static_cast<uint16_t>(port_number);
    EXPECT_EQ(ports_.in(port, 1), 0xFFu) << port;
    EXPECT_EQ(ports_.in(port, 2), 0xFFFFu) << port;
    EXPECT_EQ(ports_.in(port, 4), 0xFFFFFFFFu) << port;
  }
  EXPECT_EQ(ports_.unhandled_accesses(), 24u);
}

TEST_F(PcPortsTest, UnhandledWritesAreDroppedAndCounted) {
  ports_.out(0xCF8, 4, 0x80000000);
  ports_.out(0x2F8, 1, 'x');
  EXPECT_EQ(ports_.in(0xCF8, 4), 0xFFFFFFFFu);
  EXPECT_TRUE(console_.empty());
  EXPECT_EQ(ports_.unhandled_accesses(), 3u);
}

TEST(PcPortsNoCallbacksTest, EmptyCallbacksAreSkipped) {
  PcPorts ports{{}};
  ports.out(0x3FC, 1, 0x08);
  ports.out(0x3F9, 1, 0x02);
  ports.out(0x3F8, 1, 'x');
  ports.out(0x64, 1, 0xFE);
  EXPECT_EQ(ports.in(0x3FA, 1), 0x02u);
}

}  // namespace
}  // namespace vmfork
