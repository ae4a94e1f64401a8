// Output of the bench subcommands: one JSON object (--json) or a table for
// people, with the ratios that DESIGN section 10 sets targets for.
#pragma once

#include <cstdio>

#include <nlohmann/json.hpp>

#include "vmm/bench/clone_bench.h"
#include "vmm/bench/cow_bench.h"
#include "vmm/bench/cpu_bench.h"
#include "vmm/bench/fork_bench.h"
#include "vmm/bench/restore_bench.h"

namespace vmfork::bench {

nlohmann::json to_json(const CloneBenchReport& report);
nlohmann::json to_json(const CowBenchReport& report);
nlohmann::json to_json(const ForkBenchReport& report);
nlohmann::json to_json(const CpuBenchReport& report);
nlohmann::json to_json(const RestoreBenchReport& report);

void print_table(const CloneBenchReport& report, std::FILE* out);
void print_table(const CowBenchReport& report, std::FILE* out);
void print_table(const ForkBenchReport& report, std::FILE* out);
void print_table(const CpuBenchReport& report, std::FILE* out);
void print_table(const RestoreBenchReport& report, std::FILE* out);

}  // namespace vmfork::bench
