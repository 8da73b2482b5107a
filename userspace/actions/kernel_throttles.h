// What the enforcer asks of the kernel for a throttle (bpf/throttle.bpf.h):
// the kernel charges each write of a throttled subject to an allowance that
// refills at throttle_to, and stops the writer itself at the write that
// overdraws it; the enforcer only continues it when the allowance is back.
// An interface so the actions layer does not reach into the BPF loader (the
// agent adapts kernel/write_tracer.h to it).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rules/policy.h"

namespace diskwatch {

struct KernelThrottleState {
    double allowance_bytes = 0;  // now; negative: owed, the writer waits
    uint64_t stops = 0;          // SIGSTOPs the kernel sent
    uint64_t stop_failures = 0;  // SIGSTOPs it could not send
    uint64_t defied = 0;         // SIGCONTs from others to a writer it held stopped
};

struct KernelStop {
    pid_t pid = 0;
    RuleScope scope = RuleScope::process;  // whose allowance it overdrew
    uint64_t id = 0;                       // the throttle's pid or cgroup id
    double start_boot_s = 0;               // the stopped process's start: who it is
};

class KernelThrottles {
public:
    virtual ~KernelThrottles() = default;
    // owner_start_boot_s: process scope, the throttled process's start (a
    // later process on its pid is never charged); 0 for a cgroup.
    virtual bool start(RuleScope scope, uint64_t id, double rate_bps, double burst_bytes, double owner_start_boot_s,
                       std::string *error) = 0;
    virtual void end(RuleScope scope, uint64_t id) = 0;
    virtual std::optional<KernelThrottleState> state(RuleScope scope, uint64_t id) const = 0;
    // Every writer the kernel holds stopped (for any throttle).
    virtual std::vector<KernelStop> stopped() const = 0;
    // Drops a writer's stop record: done before it is continued, so that a
    // stop after the continue records it again.
    virtual void forget(pid_t pid) = 0;
    // Never stopped; its SIGCONTs are not defiance. unexempt: no longer (it
    // exited: a later process on the pid is not exempt).
    virtual void exempt(pid_t pid) = 0;
    virtual void unexempt(pid_t pid) = 0;
    // The continuer is alive: the kernel stops writers only within a second
    // of the last beat (a hung agent could not continue them).
    virtual void beat() = 0;
};

}  // namespace diskwatch
