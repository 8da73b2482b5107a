// Enforcement: what the agent does to a subject a rule holds for. Kill
// (pidfds, cgroup.kill), throttle (io.max, or a duty cycle of cgroup.freeze or
// SIGSTOP/SIGCONT driven by the kernel's byte count), release, dry run, and
// the bookkeeping that lets a restarted agent undo what a crashed one did.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/held_state.h"
#include "actions/pidfd.h"
#include "actions/protection.h"
#include "rules/policy.h"
#include "rules/rule_engine.h"

namespace diskwatch {

struct EnforcerOptions {
    std::string host;
    std::string cgroup2_mount;                     // absolute; empty when there is no cgroup v2
    std::string state_dir = "/run/ebpf-diskwatch"; // state.json: what we stopped or froze
    pid_t agent_pid = 0;
    // Bytes the kernel counted for a process (tgid) or a cgroup (id): the
    // throttle's accounting. Called from the throttle thread.
    std::function<std::optional<uint64_t>(RuleScope scope, uint64_t id)> bytes_counted;
    // Every action event (a JSON object); called from the agent's thread and
    // from the throttle thread (must be thread-safe and never block).
    std::function<void(const nlohmann::json &event)> emit;
    double duty_cycle_tick_s = 0.01;
};

// One thing the enforcer is doing now (the control socket lists these).
struct ActiveAction {
    std::string target;  // "process:<pid>" or "cgroup:<path>"
    std::string rule;
    std::string action;     // throttle | kill
    std::string mechanism;  // io.max | cgroup.freeze | sigstop | pidfd_send_signal | cgroup.kill
    double since_s = 0;     // steady clock seconds
    double until_s = 0;     // throttle end, kill escalation
    bool paused = false;    // duty cycle: currently stopped/frozen
};

class Enforcer {
public:
    explicit Enforcer(EnforcerOptions options);
    ~Enforcer();  // releases everything (SIGCONT, thaw, io.max max)
    Enforcer(const Enforcer &) = delete;
    Enforcer &operator=(const Enforcer &) = delete;

    void set_policy(const Policy &policy, bool dry_run);

    // Act on a subject a rule holds for (the agent calls this every
    // evaluation while the rule holds: it is idempotent). Emits one action
    // event per state change.
    void enforce(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s);
    // Kill escalation (SIGKILL after kill_grace) and throttle_for expiry.
    void tick(double now_s);
    // Is there anything for tick() to do (a kill or throttle in progress)?
    // When not, the agent can sleep until its next evaluation.
    bool needs_ticks() const;
    // Release a throttle by target: a pid ("1234") or a cgroup path ("/x/y").
    bool release(const std::string &target, const std::string &reason, std::string *error);
    // Release every throttle (agent stop).
    void release_all(const std::string &reason);
    std::vector<ActiveAction> active() const;
    // The rule stopped holding for the subject: its next episode is announced again.
    void rule_ended(const PolicyRule &rule, const Subject &subject);

    // At start: undo what a previous agent left stopped or frozen (its state
    // file, and a scan of the cgroup tree for cgroups it marked). Emits a
    // release event for each; returns how many.
    size_t reconcile();

    const Protection &protection() const { return *protection_; }
    bool is_acting_on(const std::string &subject_key) const;

private:
    struct Throttle;
    struct Kill;

    nlohmann::json action_event(const std::string &action, const PolicyRule *rule, const Subject &subject,
                                const RuleMeasures *measures, const std::string &mechanism) const;
    void action_failed(const PolicyRule &rule, const Subject &subject, const std::string &error);
    void start_throttle(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s);
    void start_kill(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s);
    void release_locked(std::map<std::string, std::unique_ptr<Throttle>>::iterator it, const std::string &reason);
    void duty_cycle_loop();  // duty_cycle_serve() until stop, across what it throws
    void duty_cycle_serve();
    void save_state_locked();
    std::string cgroup_dir(const std::string &path) const { return options_.cgroup2_mount + path; }

    EnforcerOptions options_;
    std::unique_ptr<Protection> protection_;
    bool dry_run_ = false;
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Throttle>> throttles_;  // by subject key
    std::map<std::string, std::unique_ptr<Kill>> kills_;
    std::map<std::string, std::string> announced_;  // subject key + rule -> last state (dedup)
    bool stopping_ = false;
    bool state_save_failing_ = false;  // the last save of state.json failed (said once)
    // Wakes the duty cycle thread when a throttle starts or the enforcer
    // stops: it sleeps on it while nothing is throttled (an idle agent must
    // not wake 100 times a second).
    std::condition_variable duty_cycle_wake_;
    std::thread duty_cycle_;
};

}  // namespace diskwatch
