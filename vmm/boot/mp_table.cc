#include "vmm/boot/mp_table.h"

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/boot/page_tables.h"

namespace vmfork {
namespace {

// The monitor's identity map grows up from kPml4Gpa; it must never reach the
// table when both are written.
static_assert(PageTablePlan::for_ram(kMaxRamBytes).end() <= Gpa(kMpTableBase),
              "the page tables of the largest RAM end below the MP table");

constexpr std::string_view kFloatingPointerSignature = "_MP_";
constexpr std::string_view kConfigurationSignature = "PCMP";
constexpr std::string_view kOemId = "VMFORK  ";          // 8 bytes, space padded
constexpr std::string_view kProductId = "VMFORK      ";  // 12 bytes, space padded
constexpr std::string_view kIsaBusType = "ISA   ";       // 6 bytes, space padded
constexpr uint8_t kSpecRevision = 4;                     // MP spec 1.4

// Entry fields (MP spec, tables 4-4 to 4-10).
constexpr uint8_t kCpuEnabled = 1 << 0;             // EN
constexpr uint8_t kCpuBootstrap = 1 << 1;           // BP
constexpr uint32_t kCpuSignature = 0x600;           // family 6, model 0, stepping 0
constexpr uint32_t kCpuFeatureFpu = 1u << 0;        // CPUID.1:EDX.FPU
constexpr uint32_t kCpuFeatureApic = 1u << 9;       // CPUID.1:EDX.APIC
constexpr uint8_t kIoApicEnabled = 1 << 0;          // EN
constexpr uint16_t kConformingPolarityTrigger = 0;  // PO = 00, EL = 00: the bus's default

// Appends little-endian fields, so the bytes do not depend on the host.
class TableBytes {
 public:
  explicit TableBytes(size_t capacity) { bytes_.reserve(capacity); }

  void u8(uint8_t value) { bytes_.push_back(static_cast<std::byte>(value)); }
  void u16(uint16_t value) { le(value, 2); }
  void u32(uint32_t value) { le(value, 4); }
  void text(std::string_view chars) {
    for (const char c : chars)
      u8(static_cast<uint8_t>(c));
  }
  void zeros(size_t count) { bytes_.insert(bytes_.end(), count, std::byte{0}); }

  size_t size() const { return bytes_.size(); }
  // Sets bytes[at] so that bytes [begin, begin + length) sum to 0 mod 256.
  void checksum(size_t begin, size_t length, size_t at) {
    bytes_[at] = std::byte{0};
    uint8_t sum = 0;
    for (size_t i = begin; i < begin + length; ++i) {
      sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(bytes_[i]));
    }
    bytes_[at] = static_cast<std::byte>(static_cast<uint8_t>(0x100 - sum));
  }
  std::span<const std::byte> view() const { return bytes_; }

 private:
  void le(uint32_t value, int count) {
    for (int i = 0; i < count; ++i)
      u8(static_cast<uint8_t>(value >> (8 * i)));
  }

  std::vector<std::byte> bytes_;
};

void interrupt_entry(TableBytes& out, mp::EntryType type, mp::InterruptType interrupt,
                     uint8_t source_irq, uint8_t destination, uint8_t destination_pin) {
  out.u8(static_cast<uint8_t>(type));
  out.u8(static_cast<uint8_t>(interrupt));
  out.u16(kConformingPolarityTrigger);
  out.u8(mp::kIsaBusId);
  out.u8(source_irq);
  out.u8(destination);
  out.u8(destination_pin);
}

}  // namespace

Result<void> write_mp_table(AddressSpace& space, uint32_t vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > kMaxMpVcpus) {
    return make_error(ErrorCode::kInvalidArgument, "an MP table describes 1 to " +
                                                       std::to_string(kMaxMpVcpus) +
                                                       " vCPUs, not " + std::to_string(vcpu_count));
  }
  const auto io_apic_id = static_cast<uint8_t>(vcpu_count);
  const size_t table_bytes = mp::configuration_table_bytes(vcpu_count);
  TableBytes out(mp::table_bytes(vcpu_count));

  // The floating pointer (MP spec, 4.1). Feature byte 1 = 0: a configuration
  // table is present. Feature byte 2 bit 7 (IMCR) clear: virtual wire mode,
  // so Linux does not look for an IMCR, which KVM does not emulate.
  out.text(kFloatingPointerSignature);
  out.u32(static_cast<uint32_t>(kMpTableBase + mp::kFloatingPointerBytes));
  out.u8(mp::kFloatingPointerBytes / 16);  // length in 16-byte paragraphs
  out.u8(kSpecRevision);
  out.u8(0);  // checksum, below
  out.zeros(5);
  out.checksum(0, mp::kFloatingPointerBytes, 10);

  // The configuration table header (MP spec, 4.2).
  const size_t header = out.size();
  out.text(kConfigurationSignature);
  out.u16(static_cast<uint16_t>(table_bytes));
  out.u8(kSpecRevision);
  out.u8(0);  // checksum, below
  out.text(kOemId);
  out.text(kProductId);
  out.u32(0);  // no OEM table
  out.u16(0);
  out.u16(static_cast<uint16_t>(mp::entry_count(vcpu_count)));
  out.u32(static_cast<uint32_t>(mp::kLocalApicBase));
  out.u16(0);  // no extended table: its length, its checksum, then a reserved byte
  out.u8(0);
  out.u8(0);

  for (uint32_t id = 0; id < vcpu_count; ++id) {
    out.u8(static_cast<uint8_t>(mp::EntryType::kProcessor));
    out.u8(static_cast<uint8_t>(id));  // LAPIC id: KVM gives vCPU i the id i
    out.u8(mp::kLocalApicVersion);
    out.u8(id == 0 ? kCpuEnabled | kCpuBootstrap : kCpuEnabled);
    out.u32(kCpuSignature);
    out.u32(kCpuFeatureApic | kCpuFeatureFpu);
    out.zeros(8);
  }

  out.u8(static_cast<uint8_t>(mp::EntryType::kBus));
  out.u8(mp::kIsaBusId);
  out.text(kIsaBusType);

  out.u8(static_cast<uint8_t>(mp::EntryType::kIoApic));
  out.u8(io_apic_id);
  out.u8(mp::kIoApicVersion);
  out.u8(kIoApicEnabled);
  out.u32(static_cast<uint32_t>(mp::kIoApicBase));

  // Identity: KVM's default routing (see the header).
  static_assert(mp::kIsaIrqs <= mp::kIoApicPins);
  for (uint8_t irq = 0; irq < mp::kIsaIrqs; ++irq) {
    interrupt_entry(out, mp::EntryType::kIoInterrupt, mp::InterruptType::kInt, irq, io_apic_id,
                    irq);
  }

  // The PIC's output on LINT0 (virtual wire mode) and NMI on LINT1, on every
  // LAPIC, as in Linux's own default configurations.
  interrupt_entry(out, mp::EntryType::kLocalInterrupt, mp::InterruptType::kExtInt, 0,
                  mp::kAllLocalApics, 0);
  interrupt_entry(out, mp::EntryType::kLocalInterrupt, mp::InterruptType::kNmi, 0,
                  mp::kAllLocalApics, 1);

  if (out.size() != mp::table_bytes(vcpu_count)) {
    return make_error(ErrorCode::kInternal, "MP table is " + std::to_string(out.size()) +
                                                " bytes, not the " +
                                                std::to_string(mp::table_bytes(vcpu_count)));
  }
  out.checksum(header, table_bytes, header + 7);
  return space.write(Gpa(kMpTableBase), out.view());
}

}  // namespace vmfork
