#pragma once

#include <optional>
#include <string>

#include "kernel/hooks.h"

namespace diskwatch {

struct DoctorOptions {
    bool json = false;
    std::optional<HookFamily> forced_hooks;
    // --stats: kernel-side run time of each attached program (bpf_stats)
    // over a short window of whatever the machine is doing.
    bool stats = false;
    double stats_seconds = 2.0;
    // Whether an agent answers there: `top` reads its counters then (empty:
    // /run/ebpf-diskwatch/control.sock).
    std::string control_socket;
};

// `ebpf-diskwatch doctor`: what this kernel offers and what we would attach.
// Exit 0 when the tool can run here; non-zero with the reason when not.
int run_doctor(const DoctorOptions &options);

}  // namespace diskwatch
