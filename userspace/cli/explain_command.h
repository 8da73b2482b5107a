#pragma once

#include <string>

namespace diskwatch {

struct ExplainCommand {
    std::string mount;     // empty: the fullest recorded mount
    std::string since = "24h ago";
    bool json = false;
    std::string recorder;  // empty: the running agent's, else its default (recorder/flight_recorder.h)
    std::string control_socket;  // where to ask a running agent (default /run/ebpf-diskwatch/control.sock)
    size_t top = 5;
};

// The flight record to read: `given` (--recorder), else the one a running
// agent says it writes (its policy or --recorder may have put it
// elsewhere), else the default one.
std::string recorder_to_read(const std::string &given, const std::string &control_socket);

// `ebpf-diskwatch explain [MOUNT]` (docs/explain.md).
int run_explain(const ExplainCommand &command);

}  // namespace diskwatch
