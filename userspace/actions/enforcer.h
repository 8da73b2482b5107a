// Enforcement: what the agent does to a subject a rule holds for. Kill
// (pidfds, cgroup.kill), throttle (io.max, or a stop held in the kernel: the
// writer's own hook stops it at the write that overdraws its allowance, and
// the enforcer's continuer lets it go when the allowance is back), release,
// dry run, and the bookkeeping that lets a restarted agent undo what a
// crashed one did.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/enforcement_vocabulary.h"
#include "actions/held_state.h"
#include "actions/kernel_throttles.h"
#include "actions/pidfd.h"
#include "actions/protection.h"
#include "actions/safety.h"
#include "events/events.h"
#include "rules/policy.h"
#include "rules/rule_engine.h"

namespace diskwatch {

struct EnforcerOptions {
    std::string host;
    std::string cgroup2_mount;                     // absolute; empty when there is no cgroup v2
    std::string state_dir = "/run/ebpf-diskwatch"; // state.json: what we stopped or froze
    pid_t agent_pid = 0;
    // The kernel's side of a throttle (bpf/throttle.bpf.h); outlives the
    // enforcer. Null: throttles other than io.max fail (an agent.warning).
    KernelThrottles *kernel = nullptr;
    // Every event the enforcer makes (vocabulary/event.h); called from the agent's thread and
    // from the continuer thread (must be thread-safe and never block).
    std::function<void(const Event &event)> emit;
    // The continuer looks at the kernel's stops at least this often (a stop
    // record also wakes it at once, through kernel_stopped()).
    double continuer_poll_s = 0.01;
    // Container names for protect.container and its kin (shared with the
    // monitor); null: only the names a subject carries are matched.
    std::shared_ptr<ContainerResolver> containers;
};

// One thing the enforcer is doing now (the control socket lists these).
struct ActiveAction {
    std::string target;  // "process:<pid>" or "cgroup:<path>"
    std::string rule;
    std::string action;     // throttle | kill
    std::string mechanism;  // to_string(Mechanism): io.max | sigstop | pidfd_send_signal | cgroup.kill
    double since_s = 0;     // steady clock seconds
    double until_s = 0;     // throttle end, kill escalation
    bool paused = false;    // sigstop: a writer of it is stopped now
    uint64_t stops = 0;     // sigstop: times the kernel stopped a writer of it
    uint64_t defied = 0;    // sigstop: SIGCONTs from others while it was stopped
};

class Enforcer {
public:
    explicit Enforcer(EnforcerOptions options);
    ~Enforcer();  // releases everything (SIGCONT, io.max max)
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
    // snooze_s > 0: the subject is not acted on again (by any rule) for that
    // long (release --for); its release event says until when. `requested`:
    // fields for the release event saying who asked (top's requested,
    // requested_uid, requested_pid), or null.
    bool release(const std::string &target, const std::string &reason, std::string *error, double snooze_s = 0,
                 const nlohmann::json &requested = nullptr);
    // Release every throttle (agent stop).
    void release_all(const std::string &reason);
    std::vector<ActiveAction> active() const;
    // Subjects released with a snooze (release --for) that is still running.
    std::vector<Snoozes::Snooze> snoozed(double now_s) const;
    // The rule stopped holding for the subject: its next episode is announced again.
    void rule_ended(const PolicyRule &rule, const Subject &subject);

    // At start: undo what a previous agent left stopped or frozen (its state
    // file, and a scan of the cgroup tree for cgroups it marked). Emits a
    // release event for each; returns how many.
    size_t reconcile();

    // The kernel stopped a writer: the continuer looks now (not at its next poll).
    void kernel_stopped();
    // Someone other than the agent sent SIGCONT to `pid`, which the kernel
    // holds stopped for the (scope, id) throttle: a throttle.defied event
    // (the first at once, then at most one a second per throttle, counted).
    void defied(pid_t pid, RuleScope scope, uint64_t id, pid_t sender_pid, uint32_t sender_uid,
                const std::string &sender_comm, double now_s);

    // An operator's request from top (the control socket's `act`): `rule` is
    // made for it (kRequestedRuleName, its `requested` set), and acts as a
    // rule would once, through the same path (protection, snooze, safety,
    // dry run, events). True when it is acted on; *outcome says what was
    // done, or why not in words.
    bool act_on_request(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s,
                        std::string *outcome);
    // protect from top: the subject is protected until the agent restarts
    // (Protection::protect_until_restart), with an action event saying who asked.
    void protect_on_request(const Subject &subject, const PolicyRule::Requester &requester);

    const Protection &protection() const { return *protection_; }
    Protection &protection() { return *protection_; }
    bool is_acting_on(const std::string &subject_key) const;

private:
    struct Throttle;
    struct Kill;

    ActionEvent action_event(const std::string &action, const PolicyRule *rule, const Subject &subject,
                             const RuleMeasures *measures, Mechanism mechanism) const;
    void action_failed(const PolicyRule &rule, const Subject &subject, const std::string &error);
    // A pidfd on the very process the rule saw writing: its pid and the start
    // time read when its pid was first seen. A process that took the pid since
    // (the writer exited, its exit record lost or not yet read) started later
    // and is refused, whatever its name (a writer renames itself at will, and
    // a renamed runaway is the same process). Refused: said (action_failed).
    std::optional<Pidfd> open_subject(const PolicyRule &rule, const Subject &subject);
    void start_throttle(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s);
    // detail: fields for its first event (an escalation says so).
    void start_kill(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s,
                    const nlohmann::json &detail = nlohmann::json::object());
    bool kill_allowed(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s);
    void note_kill_progress_locked(const std::string &key, const RuleMeasures &measures);
    void tick_kills_locked(double now_s);  // SIGKILL after kill_grace (and the re-check), kills that ended
    void signal_kill_locked(Kill &kill, double now_s);  // the first signal (after the pre_kill hook, if any)
    void release_locked(std::map<std::string, std::unique_ptr<Throttle>>::iterator it, const std::string &reason,
                        const nlohmann::json &extra = nlohmann::json::object());
    void continuer_loop();  // continuer_serve() until stop, across what it throws
    void continuer_serve();
    // One look at the kernel's stops: continue those whose allowance is back
    // (or whose throttle is gone). Returns when to look again.
    double continue_due_locked(double now_s);
    void continue_stopped_locked(const KernelStop &stop, Throttle *throttle);
    Throttle *kernel_throttle_locked(RuleScope scope, uint64_t id);
    bool save_state_locked();  // false: the file could not be written (said once per failing episode)
    std::string cgroup_dir(const std::string &path) const { return options_.cgroup2_mount + path; }
    // What the subject's cgroup offers (cgroup scope; nothing for a process).
    CgroupOffers cgroup_offers(const Subject &subject) const;
    // The episode's state (subject key + rule), if one was said.
    std::optional<EpisodeState> announced_locked(const std::string &announce_key) const;

    EnforcerOptions options_;
    std::unique_ptr<Protection> protection_;
    bool dry_run_ = false;
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Throttle>> throttles_;  // by subject key
    std::map<std::string, std::unique_ptr<Kill>> kills_;
    std::map<std::string, Episode> announced_;  // subject key + rule -> last state (dedup)
    Snoozes snoozes_;  // released by an operator for a while
    SafetySettings safety_;
    ActionPacer pacer_;       // when each target was last acted on (safety.action_delay)
    KillBudget kill_budget_;  // the host's kills of the last safety.kill_window
    bool stopping_ = false;
    bool state_save_failing_ = false;  // the last save of state.json failed (said once)
    // Wakes the continuer when a throttle starts, the kernel stops a writer,
    // or the enforcer stops: it sleeps on it while nothing is throttled (an
    // idle agent must not wake 100 times a second).
    std::condition_variable continuer_wake_;
    bool kernel_stopped_ = false;
    std::set<pid_t> exempted_members_;  // protected members of throttled cgroups the kernel exempts
    // After a throttle ends, the continuer keeps looking until then: a hook
    // that read the throttle just before it was removed may still stop a writer.
    double sweep_until_s_ = 0;
    std::thread continuer_;
};

}  // namespace diskwatch
