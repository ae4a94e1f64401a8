// What `vmfork vm` prints for people, from the daemon's JSON
// (api_contract.md): the tables of ls, fork and restore, the snapshot line
// and the events, with the fields a newer or broken daemon may leave out.
#include "vmm/cli/vm_output.h"

#include <gtest/gtest.h>

namespace vmfork::cli {
namespace {

using nlohmann::json;

TEST(FormatTable, ColumnsAreTwoBlanksApartAndTheLastIsNotPadded) {
  EXPECT_EQ(format_table({{"ID", "STATE"}, {"vm0.10", "Running"}, {"vm1", "Paused"}}),
            "ID      STATE\n"
            "vm0.10  Running\n"
            "vm1     Paused\n");
}

TEST(FormatVmTable, ListsEachVmUnderTheContractsColumns) {
  const json body = json::parse(R"({"vms": [
      {"id": "vm0", "state": "Running", "engine": "soft", "vcpus": 2,
       "mem_bytes": 67108864, "parent": null, "clone_id": null, "status": null,
       "error": null, "counters": {}, "frames": {}},
      {"id": "vm0.1", "state": "Exited", "engine": "kvm", "vcpus": 2,
       "mem_bytes": 67108864, "parent": "vm0", "clone_id": 1, "status": 0,
       "error": null, "counters": {}, "frames": {}}]})");
  EXPECT_EQ(format_vm_table(body),
            "ID     STATE    ENGINE  VCPUS  MEM     PARENT  STATUS\n"
            "vm0    Running  soft    2      64 MiB  -       -\n"
            "vm0.1  Exited   kvm     2      64 MiB  vm0     0\n");
}

TEST(FormatVmTable, AFailedVmShowsWhyInTheStatusColumn) {
  const json body = json::parse(R"({"vms": [
      {"id": "vm3", "state": "Exited", "engine": "soft", "vcpus": 1, "mem_bytes": 4096,
       "parent": null, "status": 1, "error": "frame pool exhausted"},
      {"id": "vm4", "state": "Exited", "engine": "soft", "vcpus": 1, "mem_bytes": 4096,
       "parent": null, "status": null, "error": "triple fault"}]})");
  EXPECT_EQ(format_vm_table(body),
            "ID   STATE   ENGINE  VCPUS  MEM    PARENT  STATUS\n"
            "vm3  Exited  soft    1      4 KiB  -       1 (error: frame pool exhausted)\n"
            "vm4  Exited  soft    1      4 KiB  -       error: triple fault\n");
}

TEST(FormatVmTable, AMissingFieldIsAQuestionMarkNotAFailure) {
  EXPECT_EQ(format_vm_table(json::parse(R"({"vms": [{"id": "vm0"}]})")),
            "ID   STATE  ENGINE  VCPUS  MEM  PARENT  STATUS\n"
            "vm0  ?      ?       ?      ?    ?       ?\n");
}

TEST(FormatVmTable, NoVmsIsTheHeaderAlone) {
  EXPECT_EQ(format_vm_table(json::parse(R"({"vms": []})")),
            "ID  STATE  ENGINE  VCPUS  MEM  PARENT  STATUS\n");
  EXPECT_EQ(format_vm_table(json::parse("{}")), "ID  STATE  ENGINE  VCPUS  MEM  PARENT  STATUS\n");
}

TEST(FormatClones, EachCloneWithItsLatencyInMicroseconds) {
  const json body = json::parse(
      R"({"clones": [{"id": "vm0.1", "latency_ns": 123456}, {"id": "vm0.2", "latency_ns": null}]})");
  EXPECT_EQ(format_clones(body),
            "CLONE  LATENCY\n"
            "vm0.1  123.5 us\n"
            "vm0.2  -\n");
}

TEST(FormatSnapshot, NamesTheDirectoryKindPagesAndTimes) {
  const json body = json::parse(
      R"({"path": "/snap/a", "pause_ns": 2500, "write_ns": 1500000, "pages": 42, "diff": true})");
  EXPECT_EQ(format_snapshot(body),
            "snapshot /snap/a: diff snapshot of 42 page(s), VM paused 2.5 us, files written in "
            "1500.0 us\n");
}

TEST(FormatEvent, SequenceEventVmThenTheOtherFields) {
  const json event = json::parse(
      R"({"seq": 7, "time_ns": 99, "event": "exited", "vm": "vm0.1", "status": 0, "why": "halt"})");
  EXPECT_EQ(format_event(event), "#7 exited vm0.1 status=0 why=halt\n");
}

}  // namespace
}  // namespace vmfork::cli
