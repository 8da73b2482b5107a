// `ebpf-diskwatch check-config FILE`: validate a policy without running it.
#pragma once

#include <string>

namespace diskwatch {

// Prints a summary and returns kExitOk for a good policy; prints
// "FILE:LINE: KEY: reason" to stderr and returns kExitFailure for a bad one.
int run_check_config(const std::string &path);

}  // namespace diskwatch
