#pragma once

#include <optional>
#include <string>

#include "aggregate/container_groups.h"
#include "aggregate/write_report.h"
#include "kernel/hooks.h"
#include "resolve/containers.h"

namespace diskwatch {

struct TopOptions {
    bool batch = false;       // -b: text (or --json) per refresh instead of the live view
    int iterations = 0;       // -n: refreshes before exiting; 0 = until interrupted
    double delay_s = 1.0;     // -d
    bool json = false;        // --json (batch): one JSON object per refresh, one per line
    GroupBy by = GroupBy::process;
    // --by container|service: the cgroup grouping merged by container or
    // Compose service (aggregate/container_groups.h); `by` is then cgroup.
    std::optional<ContainerGrouping> container_grouping;
    bool accumulated = false; // -a: include idle rows with a total since start
    std::optional<HookFamily> forced_hooks;  // implies local: the agent's hooks are the agent's
    // Attach to a running agent (docs/control.md) unless --local; with no agent
    // answering on control_socket, load our own BPF programs.
    bool local = false;
    std::string control_socket;  // empty: /run/ebpf-diskwatch/control.sock
    bool all_mounts = false;     // --all-mounts: overlay and other mounts hidden by default too
    ContainerRoots containers;   // --docker-root, --containers-storage, --containerd-state (local monitor only)
    std::string replay;    // --replay WHEN: the flight record from then on, not the kernel
    std::string recorder;  // --recorder DIR: the record to replay (default: the agent's)
};

int run_top(const TopOptions &options);

}  // namespace diskwatch
