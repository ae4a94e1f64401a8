// The MP table read back from guest memory by a parser written from the MP
// spec 1.4 (chapter 4) with its own offsets, the way Linux's mpparse.c reads
// it: the floating pointer, the header and its checksum, then every entry.
#include "vmm/boot/mp_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/guestmm/test_support.h"

namespace vmfork::testing {
namespace {

constexpr uint64_t kBase = 0xF0000;

struct Processor {
  uint8_t apic_id, apic_version, flags;
  uint32_t signature, features;
};
struct Bus {
  uint8_t id;
  std::string type;
};
struct IoApic {
  uint8_t id, version, flags;
  uint32_t address;
};
struct Interrupt {  // both I/O and local interrupt entries
  uint8_t interrupt_type;
  uint16_t flags;
  uint8_t source_bus, source_irq, destination, destination_pin;
};

struct ParsedTable {
  // Floating pointer.
  uint32_t physptr = 0;
  uint8_t paragraphs = 0, fp_revision = 0, feature1 = 0, feature2 = 0;
  uint8_t fp_sum = 0;
  // Configuration table header.
  std::string signature, oem, product;
  uint16_t length = 0, entry_count = 0, extended_length = 0;
  uint8_t revision = 0, table_sum = 0;
  uint32_t lapic = 0, oem_table = 0;
  // Entries, and their types in table order.
  std::vector<uint8_t> types;
  std::vector<Processor> processors;
  std::vector<Bus> buses;
  std::vector<IoApic> io_apics;
  std::vector<Interrupt> io_interrupts, local_interrupts;
  size_t entry_bytes = 0;  // from the end of the header to the last entry's end
};

class Reader {
 public:
  explicit Reader(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}
  uint8_t u8(size_t at) const { return static_cast<uint8_t>(bytes_.at(at)); }
  uint16_t u16(size_t at) const { return static_cast<uint16_t>(u8(at) | u8(at + 1) << 8); }
  uint32_t u32(size_t at) const { return uint32_t{u16(at)} | uint32_t{u16(at + 2)} << 16; }
  std::string text(size_t at, size_t n) const {
    std::string s;
    for (size_t i = 0; i < n; ++i)
      s.push_back(static_cast<char>(u8(at + i)));
    return s;
  }
  uint8_t sum(size_t at, size_t n) const {
    uint8_t s = 0;
    for (size_t i = 0; i < n; ++i)
      s = static_cast<uint8_t>(s + u8(at + i));
    return s;
  }

 private:
  std::vector<std::byte> bytes_;
};

// Parses by the header's length, as Linux does; fails the test on an unknown
// entry type or an entry that runs past the length.
ParsedTable parse(const AddressSpace& space) {
  ParsedTable t;
  const Reader fp(read_bytes(space, Gpa(kBase), 16));
  EXPECT_EQ(fp.text(0, 4), "_MP_");
  t.physptr = fp.u32(4);
  t.paragraphs = fp.u8(8);
  t.fp_revision = fp.u8(9);
  t.fp_sum = fp.sum(0, 16);
  t.feature1 = fp.u8(11);
  t.feature2 = fp.u8(12);

  const Reader head(read_bytes(space, Gpa(t.physptr), 44));
  t.signature = head.text(0, 4);
  t.length = head.u16(4);
  t.revision = head.u8(6);
  t.oem = head.text(8, 8);
  t.product = head.text(16, 12);
  t.oem_table = head.u32(28);
  t.entry_count = head.u16(34);
  t.lapic = head.u32(36);
  t.extended_length = head.u16(40);

  const Reader table(read_bytes(space, Gpa(t.physptr), t.length));
  t.table_sum = table.sum(0, t.length);
  size_t at = 44;
  while (at < t.length) {
    const uint8_t type = table.u8(at);
    t.types.push_back(type);
    const size_t size = type == 0 ? 20 : 8;
    if (at + size > t.length) {
      ADD_FAILURE() << "entry at " << at << " runs past the table's " << t.length << " bytes";
      break;
    }
    switch (type) {
      case 0:
        t.processors.push_back({table.u8(at + 1), table.u8(at + 2), table.u8(at + 3),
                                table.u32(at + 4), table.u32(at + 8)});
        EXPECT_EQ(table.u32(at + 12), 0u);
        EXPECT_EQ(table.u32(at + 16), 0u);
        break;
      case 1:
        t.buses.push_back({table.u8(at + 1), table.text(at + 2, 6)});
        break;
      case 2:
        t.io_apics.push_back(
            {table.u8(at + 1), table.u8(at + 2), table.u8(at + 3), table.u32(at + 4)});
        break;
      case 3:
      case 4: {
        const Interrupt entry{table.u8(at + 1), table.u16(at + 2), table.u8(at + 4),
                              table.u8(at + 5), table.u8(at + 6),  table.u8(at + 7)};
        (type == 3 ? t.io_interrupts : t.local_interrupts).push_back(entry);
        break;
      }
      default:
        ADD_FAILURE() << "unknown entry type " << int{type} << " at " << at;
        return t;
    }
    at += size;
  }
  t.entry_bytes = at - 44;
  return t;
}

class MpTable : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    space_ = unwrap(memory_->create_space("vm", 4 * kMiB));
    unwrap(write_mp_table(*space_, vcpus()));
    table_ = parse(*space_);
  }
  uint32_t vcpus() const { return GetParam(); }

  std::unique_ptr<GuestMemory> memory_ = make_memory();
  std::unique_ptr<AddressSpace> space_;
  ParsedTable table_;
};

TEST_P(MpTable, FloatingPointerIsARevision14PointerToTheTableAfterIt) {
  EXPECT_EQ(table_.physptr, kBase + 16);
  EXPECT_EQ(table_.paragraphs, 1);
  EXPECT_EQ(table_.fp_revision, 4);
  EXPECT_EQ(table_.fp_sum, 0) << "floating pointer checksum";
  EXPECT_EQ(table_.feature1, 0) << "a configuration table is present";
  EXPECT_EQ(table_.feature2 & 0x80, 0) << "virtual wire mode: no IMCR";
}

TEST_P(MpTable, HeaderNamesVmforkAndTheLocalApics) {
  EXPECT_EQ(table_.signature, "PCMP");
  EXPECT_EQ(table_.revision, 4);
  EXPECT_EQ(table_.table_sum, 0) << "configuration table checksum";
  EXPECT_EQ(table_.oem, "VMFORK  ");
  EXPECT_EQ(table_.product, "VMFORK      ");
  EXPECT_EQ(table_.oem_table, 0u);
  EXPECT_EQ(table_.lapic, 0xFEE0'0000u);
  EXPECT_EQ(table_.extended_length, 0);
}

TEST_P(MpTable, LengthAndEntryCountCoverExactlyTheEntries) {
  EXPECT_EQ(table_.length, 44 + table_.entry_bytes);
  EXPECT_EQ(table_.length, 44 + 20 * vcpus() + 8 * (1 + 1 + 16 + 2));
  EXPECT_EQ(table_.entry_count, table_.types.size());
  EXPECT_EQ(table_.entry_count, vcpus() + 20);
  EXPECT_LE(kBase + 16 + table_.length, 0x10'0000u) << "below 1 MiB";
}

TEST_P(MpTable, EntriesAreInAscendingTypeOrder) {
  EXPECT_TRUE(std::is_sorted(table_.types.begin(), table_.types.end()));
}

TEST_P(MpTable, OneEnabledProcessorPerVcpuWithVcpu0TheBootstrapProcessor) {
  ASSERT_EQ(table_.processors.size(), vcpus());
  for (uint32_t i = 0; i < vcpus(); ++i) {
    const Processor& cpu = table_.processors[i];
    EXPECT_EQ(cpu.apic_id, i);
    EXPECT_EQ(cpu.apic_version, 0x14);
    EXPECT_EQ(cpu.flags & 1, 1) << "enabled, vCPU " << i;
    EXPECT_EQ((cpu.flags & 2) != 0, i == 0) << "bootstrap flag, vCPU " << i;
    EXPECT_EQ(cpu.signature, 0x600u);
    EXPECT_EQ(cpu.features & 0x201, 0x201u) << "FPU and APIC";
  }
}

TEST_P(MpTable, OneIsaBus) {
  ASSERT_EQ(table_.buses.size(), 1u);
  EXPECT_EQ(table_.buses[0].id, 0);
  EXPECT_EQ(table_.buses[0].type, "ISA   ");
}

TEST_P(MpTable, OneEnabledIoApicWithTheIdAfterTheLastCpu) {
  ASSERT_EQ(table_.io_apics.size(), 1u);
  const IoApic& io = table_.io_apics[0];
  EXPECT_EQ(io.id, vcpus());
  EXPECT_EQ(io.version, 0x11);
  EXPECT_EQ(io.flags & 1, 1);
  EXPECT_EQ(io.address, 0xFEC0'0000u);
}

TEST_P(MpTable, IsaIrqsReachTheSameIoApicPin) {
  ASSERT_EQ(table_.io_interrupts.size(), 16u);
  for (uint8_t irq = 0; irq < 16; ++irq) {
    const Interrupt& entry = table_.io_interrupts[irq];
    EXPECT_EQ(entry.interrupt_type, 0) << "INT, irq " << int{irq};
    EXPECT_EQ(entry.flags, 0) << "conforming polarity and trigger";
    EXPECT_EQ(entry.source_bus, 0);
    EXPECT_EQ(entry.source_irq, irq);
    EXPECT_EQ(entry.destination, vcpus()) << "the IOAPIC's id";
    EXPECT_EQ(entry.destination_pin, irq) << "KVM's default GSI routing";
  }
}

TEST_P(MpTable, ExtIntOnLint0AndNmiOnLint1OfEveryLocalApic) {
  ASSERT_EQ(table_.local_interrupts.size(), 2u);
  const Interrupt& extint = table_.local_interrupts[0];
  EXPECT_EQ(extint.interrupt_type, 3);
  EXPECT_EQ(extint.destination, 0xFF);
  EXPECT_EQ(extint.destination_pin, 0);
  const Interrupt& nmi = table_.local_interrupts[1];
  EXPECT_EQ(nmi.interrupt_type, 1);
  EXPECT_EQ(nmi.destination, 0xFF);
  EXPECT_EQ(nmi.destination_pin, 1);
  for (const Interrupt& entry : table_.local_interrupts)
    EXPECT_EQ(entry.flags, 0);
}

INSTANTIATE_TEST_SUITE_P(VcpuCounts, MpTable, ::testing::Values(1u, 2u, 64u),
                         [](const ::testing::TestParamInfo<uint32_t>& param) {
                           return "Vcpus" + std::to_string(param.param);
                         });

TEST(MpTableLimits, RefusesZeroAndMoreThan64VcpusWithoutWriting) {
  std::unique_ptr<GuestMemory> memory = make_memory();
  std::unique_ptr<AddressSpace> space = unwrap(memory->create_space("vm", 4 * kMiB));
  for (const uint32_t count : {0u, 65u, 255u}) {
    const Result<void> written = write_mp_table(*space, count);
    ASSERT_FALSE(written.ok()) << count << " vCPUs";
    EXPECT_EQ(written.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(written.error().message.find(std::to_string(count)), std::string::npos);
  }
  EXPECT_EQ(read_bytes(*space, Gpa(kBase), 64), std::vector<std::byte>(64)) << "nothing written";
}

TEST(MpTableLimits, SizeHelpersMatchTheWrittenTable) {
  EXPECT_EQ(mp::table_bytes(64), 16u + 44 + 64 * 20 + 20 * 8);
  EXPECT_EQ(mp::entry_count(64), 84u);
}

}  // namespace
}  // namespace vmfork::testing
