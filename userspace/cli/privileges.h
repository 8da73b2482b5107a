#pragma once

#include <string>

namespace diskwatch {

// Loading BPF programs needs root, or CAP_BPF with CAP_PERFMON (5.8+), or
// CAP_SYS_ADMIN. Returns an empty string when we have them, else the sentence
// to print before exiting.
std::string missing_bpf_privileges();

// Exit codes shared by every command (documented in docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCannotRunHere = 3;  // no privileges, or no usable kernel hooks

}  // namespace diskwatch
