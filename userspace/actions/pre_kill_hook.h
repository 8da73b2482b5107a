// The pre-kill hook (docs/policy.md, *Safety*: `pre_kill`): a command a kill
// rule runs before it signals its subject (to save the last log lines, dump
// state), started with posix_spawn (an argv list: never a shell, never
// system()), with a timeout. Never waited for: the enforcer polls it at its
// ticks, so a slow hook holds up its own kill and nothing else. Its exit
// status and the first bytes of its output go in the kill's action event.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace diskwatch {

class HookRun {
public:
    static constexpr size_t kMaxOutputBytes = 4096;  // kept for the event; the rest is read and counted

    // Starts argv (argv[0] an absolute path) in a process group of its own,
    // stdin /dev/null, stdout and stderr into one pipe, the environment
    // PATH=/usr/sbin:/usr/bin:/sbin:/bin plus `environment` ("KEY=value").
    // nullptr and *error when it cannot be started.
    static std::unique_ptr<HookRun> start(const std::vector<std::string> &argv,
                                          const std::vector<std::string> &environment, double now_s,
                                          double timeout_s, std::string *error);
    ~HookRun();  // a hook still running is killed (its whole group) and reaped or left to reap_hooks()
    HookRun(const HookRun &) = delete;
    HookRun &operator=(const HookRun &) = delete;

    // Non-blocking: reads what the pipe holds, reaps the hook if it exited,
    // kills its group once the timeout passed. True once it is over.
    bool poll(double now_s);
    bool finished() const { return finished_; }
    // {"argv": [...], "exit_status": N | null, "signal": "SIGKILL" | null,
    //  "timed_out": bool, "duration_s", "output" (its first 4096 bytes;
    //  "output_b64" too when not UTF-8), "output_bytes" (all of it)}
    nlohmann::json result() const;

private:
    HookRun() = default;
    void drain();

    std::vector<std::string> argv_;
    pid_t pid_ = -1;
    int pipe_fd_ = -1;
    double started_s_ = 0;
    double deadline_s_ = 0;
    double ended_s_ = 0;
    bool finished_ = false;
    bool timed_out_ = false;
    int status_ = 0;
    bool reaped_ = false;
    std::string output_;
    size_t output_bytes_ = 0;
};

// Reaps hooks that were killed but had not exited when their HookRun went
// (non-blocking; the enforcer calls it at every tick). Returns how many remain.
size_t reap_hooks();

}  // namespace diskwatch
