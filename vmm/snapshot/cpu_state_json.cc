#include "vmm/snapshot/cpu_state_json.h"

#include <array>
#include <limits>
#include <string>

namespace vmfork {
namespace {

using nlohmann::json;
using Node = JsonFields::Node;

// SDM encoding order, as CpuRegisters::gpr.
constexpr std::array<const char*, 16> kGprNames = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp",
                                                   "rsi", "rdi", "r8",  "r9",  "r10", "r11",
                                                   "r12", "r13", "r14", "r15"};

struct NamedSegment {
  const char* name;
  CpuSegment CpuSegments::*member;
};
constexpr std::array<NamedSegment, 8> kSegments = {{{"cs", &CpuSegments::cs},
                                                    {"ds", &CpuSegments::ds},
                                                    {"es", &CpuSegments::es},
                                                    {"fs", &CpuSegments::fs},
                                                    {"gs", &CpuSegments::gs},
                                                    {"ss", &CpuSegments::ss},
                                                    {"tr", &CpuSegments::tr},
                                                    {"ldt", &CpuSegments::ldt}}};

struct NamedControl {
  const char* name;
  uint64_t CpuControl::*member;
};
constexpr std::array<NamedControl, 7> kControls = {{{"cr0", &CpuControl::cr0},
                                                    {"cr2", &CpuControl::cr2},
                                                    {"cr3", &CpuControl::cr3},
                                                    {"cr4", &CpuControl::cr4},
                                                    {"cr8", &CpuControl::cr8},
                                                    {"efer", &CpuControl::efer},
                                                    {"apic_base", &CpuControl::apic_base}}};

json segment_to_json(const CpuSegment& s) {
  return {{"base", s.base},
          {"limit", s.limit},
          {"selector", s.selector},
          {"type", s.type},
          {"dpl", s.dpl},
          {"present", s.present},
          {"default_32bit", s.default_32bit},
          {"code_or_data", s.code_or_data},
          {"long_mode", s.long_mode},
          {"granularity", s.granularity},
          {"available", s.available},
          {"unusable", s.unusable}};
}

json table_to_json(const CpuDescriptorTable& t) {
  return {{"base", t.base}, {"limit", t.limit}};
}

template <class T>
T narrow(JsonFields& fields, const Node& node) {
  return static_cast<T>(fields.unsigned_integer(node, std::numeric_limits<T>::max()));
}

CpuSegment segment_from_json(JsonFields& f, const Node& node) {
  CpuSegment s;
  s.base = f.unsigned_integer(f.field(node, "base"));
  s.limit = narrow<uint32_t>(f, f.field(node, "limit"));
  s.selector = narrow<uint16_t>(f, f.field(node, "selector"));
  s.type = static_cast<uint8_t>(f.unsigned_integer(f.field(node, "type"), 0xf));
  s.dpl = static_cast<uint8_t>(f.unsigned_integer(f.field(node, "dpl"), 3));
  s.present = f.boolean(f.field(node, "present"));
  s.default_32bit = f.boolean(f.field(node, "default_32bit"));
  s.code_or_data = f.boolean(f.field(node, "code_or_data"));
  s.long_mode = f.boolean(f.field(node, "long_mode"));
  s.granularity = f.boolean(f.field(node, "granularity"));
  s.available = f.boolean(f.field(node, "available"));
  s.unusable = f.boolean(f.field(node, "unusable"));
  return s;
}

CpuDescriptorTable table_from_json(JsonFields& f, const Node& node) {
  return {.base = f.unsigned_integer(f.field(node, "base")),
          .limit = narrow<uint16_t>(f, f.field(node, "limit"))};
}

}  // namespace

json vcpu_to_json(const VcpuSnapshot& vcpu) {
  const CpuState& cpu = vcpu.cpu;
  json regs = json::object();
  for (size_t i = 0; i < kGprNames.size(); ++i)
    regs[kGprNames[i]] = cpu.regs.gpr[i];
  regs["rip"] = cpu.regs.rip;
  regs["rflags"] = cpu.regs.rflags;

  json segments = json::object();
  for (const NamedSegment& s : kSegments)
    segments[s.name] = segment_to_json(cpu.segments.*s.member);
  segments["gdt"] = table_to_json(cpu.segments.gdt);
  segments["idt"] = table_to_json(cpu.segments.idt);

  json control = json::object();
  for (const NamedControl& c : kControls)
    control[c.name] = cpu.control.*c.member;

  json msrs = json::array();
  for (const CpuMsr& msr : cpu.msrs)
    msrs.push_back({{"index", msr.index}, {"value", msr.value}});

  return {{"halted", vcpu.halted},
          {"regs", std::move(regs)},
          {"segments", std::move(segments)},
          {"control", std::move(control)},
          {"msrs", std::move(msrs)},
          {"tsc_offset", cpu.tsc_offset ? json(*cpu.tsc_offset) : json(nullptr)},
          {"fpu", engine_blob_to_json(cpu.fpu)}};
}

VcpuSnapshot vcpu_from_json(JsonFields& f, const Node& node) {
  VcpuSnapshot vcpu;
  CpuState& cpu = vcpu.cpu;
  vcpu.halted = f.boolean(f.field(node, "halted"));

  const Node regs = f.field(node, "regs");
  for (size_t i = 0; i < kGprNames.size(); ++i) {
    cpu.regs.gpr[i] = f.unsigned_integer(f.field(regs, kGprNames[i]));
  }
  cpu.regs.rip = f.unsigned_integer(f.field(regs, "rip"));
  cpu.regs.rflags = f.unsigned_integer(f.field(regs, "rflags"));

  const Node segments = f.field(node, "segments");
  for (const NamedSegment& s : kSegments) {
    cpu.segments.*s.member = segment_from_json(f, f.field(segments, s.name));
  }
  cpu.segments.gdt = table_from_json(f, f.field(segments, "gdt"));
  cpu.segments.idt = table_from_json(f, f.field(segments, "idt"));

  const Node control = f.field(node, "control");
  for (const NamedControl& c : kControls) {
    cpu.control.*c.member = f.unsigned_integer(f.field(control, c.name));
  }

  const Node msrs = f.field(node, "msrs");
  const size_t msr_count = f.array_size(msrs);
  for (size_t i = 0; i < msr_count && !f.failed(); ++i) {
    const Node msr = f.element(msrs, i);
    cpu.msrs.push_back({.index = narrow<uint32_t>(f, f.field(msr, "index")),
                        .value = f.unsigned_integer(f.field(msr, "value"))});
  }

  const Node tsc_offset = f.field(node, "tsc_offset");  // null: the engine has none
  if (!f.is_null(tsc_offset)) cpu.tsc_offset = f.unsigned_integer(tsc_offset);

  cpu.fpu = engine_blob_from_json(f, f.field(node, "fpu"));
  return vcpu;
}

json engine_blob_to_json(const EngineBlob& blob) {
  return {{"engine", to_string(blob.engine)}, {"hex", hex_text(blob.bytes)}};
}

EngineBlob engine_blob_from_json(JsonFields& f, const Node& node) {
  return {.engine = f.engine(f.field(node, "engine")), .bytes = f.hex_bytes(f.field(node, "hex"))};
}

}  // namespace vmfork
