// The 16550A as Linux's 8250 driver probes and drives it
// (drivers/tty/serial/8250/8250_port.c: autoconfig, serial8250_startup).
#include "vmm/devices/uart_16550.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmfork {
namespace {

using U = Uart16550;

class UartTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> sent_;
  std::vector<bool> levels_;  // every change of the line, in order
  Uart16550 uart_{[this](uint8_t byte) { sent_.push_back(byte); },
                  [this](bool level) { levels_.push_back(level); }};

  bool line() const { return uart_.irq_level(); }
};

TEST_F(UartTest, ScratchRegisterKeepsWhatIsWritten) {
  for (int value : {0x00, 0x55, 0xAA, 0xFF}) {
    uart_.write(U::kScr, static_cast<uint8_t>(value));
    EXPECT_EQ(uart_.read(U::kScr), value);
  }
}

TEST_F(UartTest, IerKeepsOnlyItsFourBits) {
  // autoconfig's existence test: IER reads back 0 and 0x0F.
  uart_.write(U::kIer, 0);
  EXPECT_EQ(uart_.read(U::kIer), 0);
  uart_.write(U::kIer, 0x0F);
  EXPECT_EQ(uart_.read(U::kIer), 0x0F);
  // The XScale test: the UUE bit (6) does not stick.
  uart_.write(U::kIer, 0x40);
  EXPECT_EQ(uart_.read(U::kIer), 0);
}

TEST_F(UartTest, LoopbackMirrorsMcrInMsr) {
  // autoconfig: MCR = LOOP|0x0A (OUT2|RTS), then MSR & 0xF0 must be 0x90.
  uart_.write(U::kMcr, U::kMcrLoop | 0x0A);
  EXPECT_EQ(uart_.read(U::kMsr) & 0xF0, 0x90);
  uart_.write(U::kMcr, U::kMcrLoop | U::kMcrDtr | U::kMcrOut1);
  EXPECT_EQ(uart_.read(U::kMsr), U::kMsrDsr | U::kMsrRi);
  uart_.write(U::kMcr, U::kMcrLoop);
  EXPECT_EQ(uart_.read(U::kMsr), 0);
}

TEST_F(UartTest, MsrOutsideLoopbackReportsDcdDsrCts) {
  EXPECT_EQ(uart_.read(U::kMsr), 0xB0);
  uart_.write(U::kMcr, 0);
  EXPECT_EQ(uart_.read(U::kMsr), 0xB0);
}

TEST_F(UartTest, FifoEnableSetsIirTopBits) {
  // autoconfig: LCR = 0xBF, EFR (offset 2) = 0, LCR = 0, FCR = ENABLE_FIFO, IIR >> 6 == 3.
  uart_.write(U::kLcr, 0xBF);
  uart_.write(U::kIirFcr, 0);
  uart_.write(U::kLcr, 0);
  EXPECT_EQ(uart_.read(U::kIirFcr), 0x01);
  uart_.write(U::kIirFcr, U::kFcrEnableFifo);
  EXPECT_EQ(uart_.read(U::kIirFcr) >> 6, 3);
  EXPECT_EQ(uart_.read(U::kIirFcr), 0xC1);
}

TEST_F(UartTest, IsNeitherA16750NorAFsl64) {
  // autoconfig_16550a: FCR bit 5 (64-byte FIFO) never shows as IIR bit 5.
  uart_.write(U::kIirFcr, U::kFcrEnableFifo | 0x20);
  EXPECT_EQ(uart_.read(U::kIirFcr) & 0xE0, 0xC0);
  uart_.write(U::kLcr, U::kLcrDlab);
  uart_.write(U::kIirFcr, U::kFcrEnableFifo | 0x20);
  EXPECT_EQ(uart_.read(U::kIirFcr) & 0xE0, 0xC0);
}

TEST_F(UartTest, DivisorLatchRoundTrips) {
  uart_.write(U::kIer, U::kIerRdi);
  uart_.write(U::kLcr, U::kLcrDlab | 0x03);
  uart_.write(U::kDll, 0x01);
  uart_.write(U::kDlm, 0x02);
  EXPECT_EQ(uart_.read(U::kDll), 0x01);
  EXPECT_EQ(uart_.read(U::kDlm), 0x02);
  EXPECT_EQ(uart_.read(U::kLcr), U::kLcrDlab | 0x03);
  // Behind the latch, IER and THR are untouched.
  uart_.write(U::kLcr, 0x03);
  EXPECT_EQ(uart_.read(U::kIer), U::kIerRdi);
  EXPECT_TRUE(sent_.empty());
  uart_.write(U::kLcr, U::kLcrDlab);
  EXPECT_EQ(uart_.read(U::kDll), 0x01);
  EXPECT_EQ(uart_.read(U::kDlm), 0x02);
}

TEST_F(UartTest, LsrShowsAnEmptyTransmitterAndNoData) {
  EXPECT_EQ(uart_.read(U::kLsr), U::kLsrThre | U::kLsrTemt);
  uart_.write(U::kRbrThr, 'x');
  EXPECT_EQ(uart_.read(U::kLsr), U::kLsrThre | U::kLsrTemt);
}

TEST_F(UartTest, TransmitsThrWritesOutsideLoopback) {
  for (char c : std::string("hi\n"))
    uart_.write(U::kRbrThr, static_cast<uint8_t>(c));
  EXPECT_EQ(sent_, (std::vector<uint8_t>{'h', 'i', '\n'}));
}

TEST_F(UartTest, LoopbackDoesNotTransmitButReceives) {
  uart_.write(U::kMcr, U::kMcrLoop);
  uart_.write(U::kRbrThr, 'a');
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(uart_.read(U::kLsr) & U::kLsrDr, U::kLsrDr);
  EXPECT_EQ(uart_.read(U::kRbrThr), 'a');
  EXPECT_EQ(uart_.read(U::kLsr) & U::kLsrDr, 0);
  uart_.write(U::kMcr, 0);
  uart_.write(U::kRbrThr, 'b');
  EXPECT_EQ(sent_, (std::vector<uint8_t>{'b'}));
}

TEST_F(UartTest, ReceiveWithoutFifoHoldsOneByte) {
  EXPECT_TRUE(uart_.receive('1'));
  EXPECT_FALSE(uart_.receive('2'));
  EXPECT_EQ(uart_.read(U::kRbrThr), '1');
  EXPECT_EQ(uart_.read(U::kLsr) & U::kLsrDr, 0);
}

TEST_F(UartTest, ReceiveFifoHoldsSixteenInOrder) {
  uart_.write(U::kIirFcr, U::kFcrEnableFifo);
  for (int i = 0; i < 16; i++)
    EXPECT_TRUE(uart_.receive(static_cast<uint8_t>(i)));
  EXPECT_FALSE(uart_.receive(16));
  for (int i = 0; i < 16; i++)
    EXPECT_EQ(uart_.read(U::kRbrThr), i);
  EXPECT_EQ(uart_.read(U::kLsr) & U::kLsrDr, 0);
}

TEST_F(UartTest, FcrClearEmptiesTheReceiveFifo) {
  uart_.write(U::kIirFcr, U::kFcrEnableFifo);
  EXPECT_TRUE(uart_.receive('x'));
  uart_.write(U::kIirFcr, U::kFcrEnableFifo | U::kFcrClearRcvr);
  EXPECT_EQ(uart_.read(U::kLsr) & U::kLsrDr, 0);
}

TEST_F(UartTest, NoInterruptAfterReset) {
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirNoInt);
  EXPECT_FALSE(line());
  EXPECT_TRUE(levels_.empty());
}

TEST_F(UartTest, EnablingThriRaisesItAndIirReadClearsIt) {
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirThri);
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirNoInt);
}

TEST_F(UartTest, ThriIsRaisedAgainWhenEtbeiGoesZeroToOne) {
  // serial8250_startup's UART_BUG_THRE test: both reads must report THRI.
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_EQ(uart_.read(U::kIirFcr) & U::kIirNoInt, 0);
  uart_.write(U::kIer, 0);
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirThri);
}

TEST_F(UartTest, RewritingEtbeiDoesNotRaiseThriAgain) {
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirThri);
  uart_.write(U::kIer, U::kIerThri | U::kIerRdi);
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirNoInt);
}

TEST_F(UartTest, ThrWriteRaisesThri) {
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirThri);
  uart_.write(U::kRbrThr, 'x');
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirThri);
}

TEST_F(UartTest, ThriIsReportedOnlyWhenEnabled) {
  uart_.write(U::kRbrThr, 'x');
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirNoInt);
}

TEST_F(UartTest, IirCarriesFifoBitsWithThri) {
  uart_.write(U::kIirFcr, U::kFcrEnableFifo);
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_EQ(uart_.read(U::kIirFcr), 0xC2);
  EXPECT_EQ(uart_.read(U::kIirFcr), 0xC1);
}

TEST_F(UartTest, LineNeedsOut2) {
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_FALSE(line());
  uart_.write(U::kMcr, U::kMcrOut2);
  EXPECT_TRUE(line());
  uart_.write(U::kMcr, U::kMcrDtr | U::kMcrRts);
  EXPECT_FALSE(line());
  EXPECT_EQ(levels_, (std::vector<bool>{true, false}));
}

TEST_F(UartTest, LineFollowsIerAndIirAcknowledge) {
  uart_.write(U::kMcr, U::kMcrOut2);
  EXPECT_TRUE(levels_.empty());
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_TRUE(line());
  uart_.write(U::kIer, 0);
  EXPECT_FALSE(line());
  uart_.write(U::kIer, U::kIerThri);
  EXPECT_TRUE(line());
  uart_.read(U::kIirFcr);
  EXPECT_FALSE(line());
  uart_.write(U::kRbrThr, 'x');
  EXPECT_TRUE(line());
  EXPECT_EQ(levels_, (std::vector<bool>{true, false, true, false, true}));
}

TEST_F(UartTest, ReceivedDataOutranksThri) {
  uart_.write(U::kMcr, U::kMcrOut2);
  uart_.write(U::kIer, U::kIerThri | U::kIerRdi);
  EXPECT_TRUE(uart_.receive('r'));
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirRdi);  // does not acknowledge THRI
  EXPECT_EQ(uart_.read(U::kRbrThr), 'r');
  EXPECT_EQ(uart_.read(U::kIirFcr), U::kIirThri);
  EXPECT_FALSE(line());
}

TEST_F(UartTest, LinuxProbeSequenceFindsA16550A) {
  // autoconfig() and autoconfig_16550a(), in order, with the values Linux checks.
  uint8_t scratch = uart_.read(U::kIer);
  uart_.write(U::kIer, 0);
  uint8_t scratch2 = uart_.read(U::kIer) & 0x0F;
  uart_.write(U::kIer, 0x0F);
  uint8_t scratch3 = uart_.read(U::kIer) & 0x0F;
  uart_.write(U::kIer, scratch);
  ASSERT_EQ(scratch2, 0);
  ASSERT_EQ(scratch3, 0x0F);

  uint8_t save_mcr = uart_.read(U::kMcr);
  uint8_t save_lcr = uart_.read(U::kLcr);
  uart_.write(U::kMcr, U::kMcrLoop | 0x0A);
  ASSERT_EQ(uart_.read(U::kMsr) & 0xF0, 0x90);
  uart_.write(U::kMcr, save_mcr);

  uart_.write(U::kLcr, 0xBF);
  uart_.write(U::kIirFcr, 0);  // EFR on chips that have one
  uart_.write(U::kLcr, 0);
  uart_.write(U::kIirFcr, U::kFcrEnableFifo);
  ASSERT_EQ(uart_.read(U::kIirFcr) >> 6, 3);  // a 16550A

  // No EFR behind LCR = 0x80 or 0xBF: offset 2 reads the non-zero IIR.
  uart_.write(U::kLcr, 0x80);
  EXPECT_NE(uart_.read(U::kIirFcr), 0);
  uart_.write(U::kLcr, 0xBF);
  EXPECT_NE(uart_.read(U::kIirFcr), 0);
  // Not a National Semiconductor SuperIO: EXCR1 (offset 2 with LCR = 0xE0)
  // does not follow MCR's LOOP bit.
  uart_.write(U::kLcr, 0);
  uint8_t status1 = uart_.read(U::kMcr);
  uart_.write(U::kLcr, 0xE0);
  uint8_t status2 = uart_.read(U::kIirFcr);
  EXPECT_EQ((status1 ^ status2) & U::kMcrLoop, 0);
  uart_.write(U::kLcr, 0);
  uart_.write(U::kMcr, status1 ^ U::kMcrLoop);
  uart_.write(U::kLcr, 0xE0);
  status2 = uart_.read(U::kIirFcr);
  uart_.write(U::kLcr, 0);
  uart_.write(U::kMcr, status1);
  EXPECT_EQ((status1 ^ status2) & U::kMcrLoop, 0);

  uart_.write(U::kLcr, save_lcr);
  uart_.write(U::kMcr, save_mcr);
  uart_.write(U::kIirFcr, U::kFcrEnableFifo);
  uart_.write(U::kIirFcr, U::kFcrEnableFifo | U::kFcrClearRcvr | U::kFcrClearXmit);
  uart_.write(U::kIirFcr, 0);
  uart_.read(U::kRbrThr);
  uart_.write(U::kIer, 0);
  EXPECT_TRUE(sent_.empty());
  EXPECT_TRUE(levels_.empty());
}

}  // namespace
}  // namespace vmfork
