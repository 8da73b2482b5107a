#pragma once

#include <string>

namespace diskwatch {

struct ExplainCommand {
    std::string mount;     // empty: the fullest recorded mount
    std::string since = "24h ago";
    bool json = false;
    std::string recorder;  // empty: the agent's default (recorder/flight_recorder.h)
    size_t top = 5;
};

// `ebpf-diskwatch explain [MOUNT]` (docs/explain.md).
int run_explain(const ExplainCommand &command);

}  // namespace diskwatch
