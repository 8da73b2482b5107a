// Test support: run `ebpf-diskwatch top -b --json`, do something while it
// watches, and parse what it printed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/spawn.h"

namespace diskwatch::test {

struct TopRun {
    std::vector<nlohmann::json> refreshes;  // one per line of stdout
    std::string stderr_text;
    int exit_status = -1;
};

// Starts `top -b --json -n iterations -d delay_s` plus extra arguments, waits
// until its hooks are attached, runs `workload`, and collects every refresh.
TopRun run_top_while(const std::vector<std::string> &extra_arguments, int iterations, double delay_s,
                     const std::function<void()> &workload);

// Runs dw-test-writer with the given arguments to completion; returns the
// bytes it reports written and its pid (and, with --keep-going-when-full 1,
// the calls the kernel refused because the disk was full).
struct WriterResult {
    int pid = 0;
    long long written = 0;
    long long nospace_failures = 0;
};
WriterResult run_writer(const std::vector<std::string> &arguments);

// Starts dw-test-writer appending `bytes` to `file` in 64 KiB write() calls,
// named `comm`, plus extra arguments (--rate, --pace, --cgroup, ...), and
// leaves it running.
ChildProcess start_writer(const std::string &file, long long bytes, const std::string &comm,
                          const std::vector<std::string> &extra = {});

// The rows of a refresh whose `key` equals `value`.
std::vector<nlohmann::json> rows_where(const nlohmann::json &refresh, const std::string &key,
                                       const nlohmann::json &value);

}  // namespace diskwatch::test
