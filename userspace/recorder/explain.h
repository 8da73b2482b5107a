// `ebpf-diskwatch explain [MOUNT]` (docs/explain.md): why a disk is full, in
// one answer. Who filled it (the flight record: processes, units,
// containers, Compose services, by bytes and by growth, with when they began),
// where those bytes are now (the recorded files, then a bounded walk), what
// deleted files still hold space and which process holds each, who keeps
// failing to write for want of space, which prevention is missing, and what
// to do. One JSON document; the text is rendered from it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace diskwatch {

struct ExplainOptions {
    std::string recorder_dir;  // the flight record
    std::string mount;         // any path on the filesystem; empty: the fullest one recorded
    double since_s = 0;        // unix seconds: the history looked at starts here
    double now_s = 0;
    size_t top = 5;               // rows per list
    size_t walk_entries = 400000;  // the bounded walk's limits
    double walk_budget_s = 2.0;
    std::string root = "/";        // where the machine's configuration is read (tests: a fixture tree)
    std::string proc_root = "/proc";
    std::string docker_root = "/var/lib/docker";
};

// nullopt, with *error, when the mount cannot be found (a path that does
// not exist, no recorded mount to choose). An empty flight record is not an
// error: the answer says so, and what it can still see (deleted files, walk,
// prevention) is there.
std::optional<nlohmann::json> explain(const ExplainOptions &options, std::string *error);

// For a person: the same answer in sections, names made safe for a terminal.
std::string explain_text(const nlohmann::json &answer);

}  // namespace diskwatch
