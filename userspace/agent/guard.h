// The guard: what lets go of the agent's throttles when the agent cannot.
//
// A throttle stops a writer (SIGSTOP) or freezes its cgroup; an agent that
// dies or hangs mid-throttle would leave it so until someone restarts the
// agent. The agent therefore starts a guard: a second, tiny process (its own
// binary again, `ebpf-diskwatch guard`, through fork + exec) that holds no BPF
// program, link or map (exec drops every descriptor but the heartbeat), not
// the state dir's lock (a restarted agent is never blocked by it), and no
// thread of the agent's. It watches two things:
//   - the agent's pidfd: readable the moment the agent exits, however it dies;
//   - a heartbeat the agent's loop writes into a shared page every pass: a
//     hung or SIGSTOPped agent stops beating (its death never comes).
// Either way the guard releases what state.json lists as this agent's (and
// every cgroup carrying this state dir's freeze mark): SIGCONT through a
// pidfd checked against the start time, cgroup.freeze 0, io.max max, and
// writes one `action` release event per subject to the agent's event file or
// stdout. A clean agent stop releases everything itself first, so the guard
// then finds nothing. SIGTERM/SIGINT (systemd stops the whole unit; Ctrl-C
// reaches the whole process group): the guard waits for the agent to finish
// its own release (bounded), releases what is left, and exits.
//
// In a container whose runtime kills every process when the main one dies
// (Kubernetes, docker), the guard dies with the agent: there the restarted
// agent's reconcile (the same release, from the same state file on a hostPath)
// is what lets go (docs/security.md).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace diskwatch {

// How long a silent heartbeat means a hung agent. While the agent holds
// anything, its loop passes at least every 50 ms (the enforcer's tick), so
// this is a generous multiple of it.
inline constexpr double kGuardHangS = 2.0;

struct GuardOptions {
    pid_t agent_pid = 0;
    std::string state_dir;
    std::string cgroup2_mount;   // absolute; empty: no cgroup v2 (process throttles only)
    int heartbeat_fd = -1;
    double hang_s = kGuardHangS;
    std::string json_out;        // the agent's --json-out; empty: stdout
    double stop_wait_s = 10;     // after SIGTERM: how long the agent gets to release by itself
};

// `ebpf-diskwatch guard ...`: the guard process's main. Exit code 0 once the
// agent is gone and everything it held is released.
int run_guard(const GuardOptions &options);

// The agent's side: starts the guard, beats, and tells it of a clean exit.
class Guard {
public:
    // fork + exec of /proc/self/exe guard; nullptr with the reason in *error.
    static std::unique_ptr<Guard> start(const std::string &state_dir, const std::string &cgroup2_mount,
                                        const std::string &json_out, std::string *error);
    ~Guard();
    Guard(const Guard &) = delete;
    Guard &operator=(const Guard &) = delete;

    // Every pass of the agent's loop (lock-free: stores into the shared page),
    // with whether it holds anything stopped, frozen or limited now.
    void beat(bool holding);
    // The agent runs its loop from now on: a silent heartbeat means a hang.
    void arm();
    // False once the guard process has exited (it is reaped here).
    bool alive();
    pid_t pid() const { return pid_; }
    // Starts a new guard in place of one that exited. False with the reason.
    bool restart(std::string *error);

    // The shared page: written by the agent, read by the guard.
    struct Page {
        std::atomic<uint64_t> beat_ns;  // CLOCK_MONOTONIC of the last pass (0: not armed)
        // Something is held: only then can a hang leave a writer stopped, so
        // only then does the guard look at the heartbeat often (an idle
        // agent's guard wakes once a second; a death wakes it at once).
        std::atomic<uint32_t> holding;
    };

private:
    Guard(int memfd, Page *page, std::string state_dir, std::string cgroup2_mount, std::string json_out)
        : memfd_(memfd), page_(page), state_dir_(std::move(state_dir)), cgroup2_mount_(std::move(cgroup2_mount)),
          json_out_(std::move(json_out))
    {
    }
    bool spawn(std::string *error);

    int memfd_ = -1;
    Page *page_ = nullptr;
    bool holding_ = false;
    std::string state_dir_, cgroup2_mount_, json_out_;
    pid_t pid_ = -1;
    bool armed_ = false;
};

}  // namespace diskwatch
