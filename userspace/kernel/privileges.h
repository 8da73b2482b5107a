#pragma once

#include <string>

#include "vocabulary/exit_codes.h"  // kExitCannotRunHere: what a caller does with the answer

namespace diskwatch {

// Loading BPF programs needs root, or CAP_BPF with CAP_PERFMON (5.8+), or
// CAP_SYS_ADMIN. Returns an empty string when we have them, else the sentence
// to print before exiting.
std::string missing_bpf_privileges();

}  // namespace diskwatch
