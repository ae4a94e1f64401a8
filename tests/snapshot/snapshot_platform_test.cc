// A Linux guest's snapshot (Platform::kPc, issue 14): config.json and
// state.json say so, the platform state (the engine's chips, COM1's and the
// RTC's registers) comes back as written, files from before PC snapshots
// read as freestanding, and every disagreement or bad register is refused
// naming the file and the field.
#include <gtest/gtest.h>

#include "tests/snapshot/snapshot_test_support.h"

namespace vmfork::testing {
namespace {

using nlohmann::json;
constexpr ErrorCode kInvalid = ErrorCode::kInvalidArgument;

class SnapshotPlatform : public ::testing::Test {
 protected:
  SnapshotPlatform() { write(dir(), pages_, sample_pc_config(), sample_pc_state()); }
  fs::path dir() const { return tmp_ / "pc"; }
  std::string file(const char* name) const { return (dir() / name).string(); }

  TempDir tmp_;
  Pages pages_{{3, page_pattern(1)}, {16 * 5 + 2, page_pattern(2)}};
};

TEST_F(SnapshotPlatform, ThePlatformStateComesBackAsWritten) {
  const OpenedSnapshot opened = unwrap(open_snapshot(dir()));
  EXPECT_EQ(opened.config, sample_pc_config());
  ASSERT_TRUE(opened.state.platform.has_value());
  const PlatformSnapshot& got = *opened.state.platform;
  const PlatformSnapshot want = sample_platform();
  EXPECT_EQ(got.chips, want.chips);
  EXPECT_EQ(got.ports.com1, want.ports.com1);
  EXPECT_EQ(got.ports.rtc, want.ports.rtc);
  EXPECT_EQ(got, want);  // and nothing the fields above forgot
  ASSERT_EQ(opened.state.vcpus.size(), 2u);
  EXPECT_EQ(opened.state.vcpus[1].cpu, sample_pc_state().vcpus[1].cpu);
}

TEST_F(SnapshotPlatform, TheFilesSayPcAndNameTheRegisters) {
  const json config = json::parse(read_text(dir() / "config.json"));
  EXPECT_EQ(config["platform"], "pc");
  const json state = json::parse(read_text(dir() / "state.json"));
  EXPECT_EQ(state["layout"]["platform"], "pc");
  const json& pc = state["devices"]["pc"];
  EXPECT_EQ(pc["chips"]["engine"], "kvm");
  EXPECT_EQ(pc["com1"]["lcr"], 3);
  EXPECT_EQ(pc["com1"]["rx_count"], 3);
  EXPECT_EQ(pc["com1"]["rx"], "6162636465666768696a6b6c6d6e6f70");
  EXPECT_EQ(pc["rtc"]["index"], 0x0b);
  EXPECT_EQ(pc["rtc"]["ram"].get<std::string>().size(), 256u);
}

TEST_F(SnapshotPlatform, AFreestandingSnapshotSaysSoAndHasNoPcDevices) {
  write(tmp_ / "f", pages_);
  const json state = json::parse(read_text(tmp_ / "f" / "state.json"));
  EXPECT_EQ(state["layout"]["platform"], "freestanding");
  EXPECT_FALSE(state["devices"].contains("pc"));
  const OpenedSnapshot opened = unwrap(open_snapshot(tmp_ / "f"));
  EXPECT_EQ(opened.config.platform, Platform::kFreestanding);
  EXPECT_FALSE(opened.state.platform.has_value());
}

// Snapshots written before PC guests had any: no "platform" anywhere.
TEST_F(SnapshotPlatform, FilesWithoutPlatformReadAsFreestanding) {
  const fs::path old = tmp_ / "old";
  write(old, pages_);
  edit_state(old, [](json& state) { state["layout"].erase("platform"); });
  edit_config(old, [](json& config) { config.erase("platform"); });
  const OpenedSnapshot opened = unwrap(open_snapshot(old));
  EXPECT_EQ(opened.config, sample_config());
  EXPECT_FALSE(opened.state.platform.has_value());
}

TEST_F(SnapshotPlatform, ConfigAndStateDisagreeOnThePlatform) {
  edit_config(dir(), [](json& config) { config["platform"] = "freestanding"; });
  EXPECT_TRUE(FailsWith(
      open_snapshot(dir()), kInvalid,
      {file("state.json") + ": layout.platform: pc", file("config.json"), "says freestanding"}));
}

TEST_F(SnapshotPlatform, AnUnknownPlatformIsRefused) {
  edit_config(dir(), [](json& config) { config["platform"] = "arm"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("config.json") + ": platform: \"arm\" is not a platform"}));
  edit_state(dir(), [](json& state) { state["layout"]["platform"] = 1; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": layout.platform: expected a string"}));
}

TEST_F(SnapshotPlatform, APcLayoutWithoutItsDevicesIsRefused) {
  edit_state(dir(), [](json& state) { state["devices"].erase("pc"); });
  EXPECT_TRUE(
      FailsWith(open_snapshot(dir()), kInvalid, {file("state.json") + ": devices.pc: missing"}));
}

TEST_F(SnapshotPlatform, PcDevicesInAFreestandingLayoutAreRefused) {
  edit_state(dir(), [](json& state) { state["layout"]["platform"] = "freestanding"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": devices.pc: set, but layout.platform is"}));
}

TEST_F(SnapshotPlatform, RegistersOutOfTheirRangeAreRefused) {
  edit_state(dir(), [](json& state) { state["devices"]["pc"]["com1"]["lcr"] = 256; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": devices.pc.com1.lcr: 256 is out of range"}));
  edit_state(dir(), [](json& state) {
    state["devices"]["pc"]["com1"]["lcr"] = 3;
    state["devices"]["pc"]["com1"]["rx_count"] = 17;
  });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": devices.pc.com1.rx_count: 17 is out of range"}));
  edit_state(dir(), [](json& state) {
    state["devices"]["pc"]["com1"]["rx_count"] = 3;
    state["devices"]["pc"]["rtc"]["index"] = 0x80;
  });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": devices.pc.rtc.index: 128 is out of range"}));
}

TEST_F(SnapshotPlatform, ByteArraysOfTheWrongLengthAreRefused) {
  edit_state(dir(), [](json& state) { state["devices"]["pc"]["rtc"]["ram"] = "00ff"; });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": devices.pc.rtc.ram: 2 bytes, expected 128"}));
  edit_state(dir(), [](json& state) {
    state["devices"]["pc"]["rtc"]["ram"] = std::string(256, '0');
    state["devices"]["pc"]["chips"]["hex"] = "0g";
  });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": devices.pc.chips.hex: character 0"}));
}

TEST_F(SnapshotPlatform, AParentOfAnotherPlatformIsRefused) {
  const fs::path freestanding = tmp_ / "f";
  write(freestanding, {});
  edit_state(dir(), [&](json& state) { set_parent(state, freestanding); });
  EXPECT_TRUE(FailsWith(open_snapshot(dir()), kInvalid,
                        {file("state.json") + ": parent: " + freestanding.string(),
                         "is of a freestanding guest, this chain of a pc one"}));
}

TEST_F(SnapshotPlatform, ATooLargePcIsRefused) {
  // A PC's RAM ends below the 32-bit hole (vmm/boot/guest_layout.h); the
  // same RAM is a valid freestanding layout.
  const fs::path big = tmp_ / "big";
  EXPECT_TRUE(
      FailsWith(write_snapshot(big, sample_pc_config(2, 4 * kGiB), sample_pc_state(), walk(pages_)),
                kInvalid, {big.string(), "ram_bytes"}));
  EXPECT_FALSE(fs::exists(big));
  write(big, {}, sample_config(2, 4 * kGiB));
  edit_config(big, [](json& config) { config["platform"] = "pc"; });
  EXPECT_TRUE(
      FailsWith(open_snapshot(big), kInvalid, {(big / "config.json").string(), "ram_bytes"}));
}

}  // namespace
}  // namespace vmfork::testing
