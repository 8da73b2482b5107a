// Parts of the BPF write path that scripts/bench can leave out, to measure
// what each one costs (docs/benchmarks.md, "Where an append's time goes").
// One environment variable, read once before the BPF object is loaded:
//   DISKWATCH_BENCH_PARTS_OFF=device,growth,rate-alarm,writers,dirty-folio,dirty-folio-hook
// (any of them, comma-separated). A monitor run with it counts wrongly by
// design, so every use is logged as a warning, like the test map sizes
// (kernel/test_map_sizes.h).
#pragma once

#include <cstdint>
#include <string>

namespace diskwatch {

// The DW_PART_* bits the variable names (0 when unset). Returns false with
// the reason in *error for a name it does not know; *applied describes what
// was left out, for the log (empty when nothing).
bool read_bench_parts_off(uint32_t *parts, std::string *applied, std::string *error);

}  // namespace diskwatch
