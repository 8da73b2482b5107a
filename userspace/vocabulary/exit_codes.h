// The exit codes every command shares (docs/cli.md, "Exit codes"): a contract.
#pragma once

namespace diskwatch {

// Exit codes shared by every command (documented in docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCannotRunHere = 3;  // no privileges, or no usable kernel hooks

}  // namespace diskwatch
