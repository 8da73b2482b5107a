// Test-only map sizes, so the fault tests can fill the kernel's maps without
// flooding the machine (docs/security.md, "Faults"). Two environment
// variables, read once before the BPF object is loaded:
//   DISKWATCH_TEST_WRITERS_MAX   entries of the writer map (1 .. DW_WRITERS_MAX)
//   DISKWATCH_TEST_EVENTS_BYTES  bytes of the lifecycle ring buffer (a power of
//                                two, at least one page, at most the default)
// They can only shrink the maps, never grow them, and every use is logged as a
// warning: an operator who finds one set in production sees it at once.
#pragma once

#include <string>
#include <vector>

struct bpf_map;

namespace diskwatch {

// Applies the variables that are set to the (opened, not yet loaded) maps.
// Returns false with the reason in *error when a value is not acceptable;
// *applied describes what was changed, for the log.
bool apply_test_map_sizes(bpf_map *writers, bpf_map *events, std::vector<std::string> *applied, std::string *error);

}  // namespace diskwatch
