// `ebpf-diskwatch status` and `ebpf-diskwatch release PID|CGROUP`: requests to the running
// agent over its control socket (docs/control.md).
#pragma once

#include <string>

#include "control/control_protocol.h"

namespace diskwatch {

struct StatusOptions {
    std::string socket = control::kDefaultSocketPath;
    bool json = false;  // the agent's answer as one JSON object
};
int run_status(const StatusOptions &options);

struct ReleaseOptions {
    std::string socket = control::kDefaultSocketPath;
    std::string target;  // a pid or a cgroup path
    std::string snooze;  // --for DURATION: not acted on again for this long (validated by main)
};
int run_release(const ReleaseOptions &options);

}  // namespace diskwatch
