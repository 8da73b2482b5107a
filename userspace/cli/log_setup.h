// The logger every command writes to stderr through. Log lines carry names any
// user controls (a process name in "cannot kill ...", a cgroup path): each
// message is made terminal-safe (views/format.h) before it is formatted, so a
// name can neither drive the operator's terminal nor forge a log line.
#pragma once

#include <memory>

#include <spdlog/sinks/sink.h>

namespace diskwatch {

// The default logger: stderr (coloured on a terminal), "TIME LEVEL message",
// debug when verbose.
void setup_logging(bool verbose);

// A sink that passes each message through terminal_safe() to `inner`.
std::shared_ptr<spdlog::sinks::sink> terminal_safe_sink(std::shared_ptr<spdlog::sinks::sink> inner);

}  // namespace diskwatch
