// The enforcer's words, one table each (issue 18): how an action is carried
// out (Mechanism: the `mechanism` of action events, docs/events.md, and of the
// control socket's list of actions), where a rule's episode for a subject
// stands (EpisodeState: the enforcer's once-per-episode bookkeeping), and the
// ONE choice of the throttle and kill mechanisms, shared by the real path and
// dry run so that dry run says what the real path would do.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rules/policy.h"
#include "rules/rule_engine.h"

namespace diskwatch {

enum class Mechanism {
    none,               // nothing done: protected, omitted, snoozed, a lifted snooze, protect
    event,              // alert: an event and nothing else
    io_max,             // io.max wbps=: the kernel limits the cgroup's writeback
    sigstop,            // a throttle held in the kernel: the writer is stopped at its write
    pidfd_send_signal,  // a kill through pidfds
    cgroup_kill,        // a kill through cgroup.kill
    cgroup_freeze,      // release only: what an earlier agent froze (state.json's "frozen")
};
// Every enumerator, for the tests' round trips and mechanism_from_string.
inline constexpr Mechanism kMechanisms[] = {Mechanism::none,    Mechanism::event,       Mechanism::io_max,
                                            Mechanism::sigstop, Mechanism::pidfd_send_signal,
                                            Mechanism::cgroup_kill, Mechanism::cgroup_freeze};
// The contract's spellings: none, event, io.max, sigstop, pidfd_send_signal,
// cgroup.kill, cgroup.freeze.
std::string_view to_string(Mechanism mechanism);
// The inverse of to_string; nullopt for any other string.
std::optional<Mechanism> mechanism_from_string(std::string_view text);

// Where a rule's episode for a subject stands: each is said once per episode
// (the rule's next episode, or the end of a throttle, forgets it).
enum class EpisodeState {
    alert,         // an alert was said
    snoozed,       // released with a snooze (release --for): said that nothing is done
    kill,          // killed once this episode
    failed,        // could not act (an agent.warning said why)
    kill_limited,  // past safety.kill_limit: an alert instead of the kill
    spared,        // spared by the re-check before SIGKILL
    protected_,    // protected or omitted (decided once per episode)
    throttle,      // throttled
    dry_run,       // dry run: said what would be done (Episode::dry_run_action)
};
// Every enumerator, for the tests' round trips and episode_state_from_string.
inline constexpr EpisodeState kEpisodeStates[] = {
    EpisodeState::alert,        EpisodeState::snoozed, EpisodeState::kill,
    EpisodeState::failed,       EpisodeState::kill_limited, EpisodeState::spared,
    EpisodeState::protected_,   EpisodeState::throttle, EpisodeState::dry_run};
std::string_view to_string(EpisodeState state);
std::optional<EpisodeState> episode_state_from_string(std::string_view text);

// An episode's state, and for dry run the action it would have taken (a rule
// whose action changes on reload says its dry run anew).
struct Episode {
    EpisodeState state = EpisodeState::alert;
    RuleAction dry_run_action = RuleAction::alert;  // dry_run only; alert otherwise

    static Episode dry_run(RuleAction action) { return {EpisodeState::dry_run, action}; }
    friend bool operator==(const Episode &, const Episode &) = default;
};
// "throttle", "dry_run:kill", ...: for logs and tests.
std::string to_string(const Episode &episode);

// What a cgroup offers the enforcer, probed apart from the choice (so that the
// choice is tested without root or a cgroup).
struct CgroupOffers {
    bool io_max = false;       // io.max: the io controller is enabled for it
    bool cgroup_kill = false;  // cgroup.kill: Linux 5.14 and later
};
// The control files under `cgroup_dir` (absolute). Never throws: a file that
// cannot be looked at is not offered.
CgroupOffers probe_cgroup_offers(const std::string &cgroup_dir);

// The throttle's mechanism, or why there is none (the agent.warning's words).
struct ThrottleChoice {
    std::optional<Mechanism> mechanism;
    std::string cannot;  // when there is no mechanism
};
// io.max for a cgroup that has it and a device to limit (subject.dev); else a
// throttle held in the kernel (sigstop), if the agent has one; else none.
// `offers` counts only for cgroup scope.
ThrottleChoice choose_throttle_mechanism(const Subject &subject, const CgroupOffers &offers, bool kernel_throttle);
// cgroup.kill for a cgroup that has it; else signals through pidfds.
Mechanism choose_kill_mechanism(const Subject &subject, const CgroupOffers &offers);

}  // namespace diskwatch
