// The enforcer's safety habits (docs/policy.md, *Safety*; issue 16), each a
// small piece of bookkeeping with one job, kept apart from the enforcer's
// mechanisms (signals, the kernel's throttles, state.json):
//  - Snoozes: a subject released with `release TARGET --for D` is not acted
//    on again until D has passed;
//  - ActionPacer: after an action on a target, no new action on that target
//    for safety.action_delay (every target has its own clock: one target's
//    wait never holds up another's action);
//  - KillBudget: at most safety.kill_limit kills host-wide within
//    safety.kill_window; past it, kills become alerts;
//  - recheck_before_sigkill(): SIGKILL follows SIGTERM only if the subject
//    kept writing through kill_grace;
//  - escalation_due(): a throttled subject that would still be over its
//    rule's rate after escalate_after is killed;
//  - order_for_action(): whom to act on first (a cgroup rule's prefer and
//    avoid, the largest writer first), and omit_reason(): whom never.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rules/rule_engine.h"

namespace diskwatch {

// Subjects an operator released for a while. Keyed by the subject's key and,
// for a process, its start time: a later process on the same pid is not snoozed.
class Snoozes {
public:
    struct Snooze {
        double until_s = 0;         // steady clock
        std::string until_rfc3339;  // the same moment, wall clock, for events
        std::string target;         // "process:<pid>" or "cgroup:<path>", as status shows targets
    };
    static constexpr size_t kMaxSnoozes = 4096;  // the oldest-ending go first past this

    void add(const Subject &subject, double now_s, double for_s);
    // The subject's snooze, if it is snoozed at now_s (an expired one is forgotten).
    std::optional<Snooze> active(const Subject &subject, double now_s);
    void prune(double now_s);
    // An operator lifts it early (release TARGET, nothing throttled):
    // `target` is a pid or a cgroup path. Whether one was lifted.
    bool lift(const std::string &target);
    size_t size() const { return snoozes_.size(); }
    // Those still running at now_s, soonest-ending first.
    std::vector<Snooze> active_all(double now_s) const;

private:
    static std::string key_of(const Subject &subject);
    std::map<std::string, Snooze> snoozes_;
};

// When each target was last acted on.
class ActionPacer {
public:
    // May `key` be acted on at now_s? (false: its last action was less than delay_s ago)
    bool ready(const std::string &key, double now_s, double delay_s) const;
    void acted(const std::string &key, double now_s);
    void prune(double now_s, double delay_s);  // forgets targets whose delay is over (bounded)
    size_t size() const { return last_action_s_.size(); }

private:
    std::map<std::string, double> last_action_s_;
};

// The kills of the last window, host-wide.
class KillBudget {
public:
    // May one more kill start at now_s? limit 0: no limit.
    bool allows(double now_s, uint32_t limit, double window_s);
    void spent(double now_s) { kills_s_.push_back(now_s); }
    size_t in_window(double now_s, double window_s);

private:
    std::deque<double> kills_s_;
};

// The re-check before SIGKILL: did the subject keep writing through the
// grace? With a rate condition in the rule: more than the rule's lowest
// write_rate x the time since SIGTERM (what it wrote as it wound down is
// allowed). Without one: its conditions held at the last evaluation and it
// wrote something since. Numbers unknown (bytes_at_sigterm < 0): SIGKILL, as
// without the re-check.
struct SigkillRecheck {
    bool sigkill = true;
    std::string why;
};
SigkillRecheck recheck_before_sigkill(double bytes_at_sigterm, double bytes_now, double elapsed_s,
                                      std::optional<double> rate_bps, bool held_now);

// Escalation (a throttle rule's escalate_after): over a window of the
// throttle, the writer spent `stopped_s` of `window_s` stopped by it. Held
// to throttle_to, a writer stopped a fraction f of the time wants to write
// at about throttle_to / (1 - f): it is killed when that is over the rule's
// lowest write_rate (a rule without one: when it was stopped most of the window).
struct EscalationVerdict {
    bool kill = false;
    double stopped_fraction = 0;
    std::optional<double> demand_bps;  // nullopt: stopped all along (no bound)
    std::string why;
};
EscalationVerdict escalation_due(double stopped_s, double window_s, double throttle_to_bps,
                                 std::optional<double> rule_rate_bps);

// A subject a rule holds for at one evaluation, before the enforcer acts.
struct ActionCandidate {
    size_t rule_index = 0;
    Subject subject;
    RuleMeasures measures;
};
// The order to act in, across rules (the kill limit is host-wide): cgroups a
// rule prefers first, then the rest, then those it avoids; within each, the
// fastest writer first. Stable.
void order_for_action(std::vector<ActionCandidate> &candidates, const std::vector<PolicyRule> &rules);
// "cgroup X matches omit Y": the rule never acts on it.
std::optional<std::string> omit_reason(const PolicyRule &rule, const Subject &subject);

}  // namespace diskwatch
