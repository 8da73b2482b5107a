#include "actions/enforcement_vocabulary.h"

#include <filesystem>
#include <system_error>

namespace diskwatch {

std::string_view to_string(Mechanism mechanism)
{
    switch (mechanism) {
    case Mechanism::none: return "none";
    case Mechanism::event: return "event";
    case Mechanism::io_max: return "io.max";
    case Mechanism::sigstop: return "sigstop";
    case Mechanism::pidfd_send_signal: return "pidfd_send_signal";
    case Mechanism::cgroup_kill: return "cgroup.kill";
    case Mechanism::cgroup_freeze: return "cgroup.freeze";
    }
    return "none";
}

std::optional<Mechanism> mechanism_from_string(std::string_view text)
{
    for (const Mechanism mechanism : kMechanisms)
        if (to_string(mechanism) == text)
            return mechanism;
    return std::nullopt;
}

std::string_view to_string(EpisodeState state)
{
    switch (state) {
    case EpisodeState::alert: return "alert";
    case EpisodeState::snoozed: return "snoozed";
    case EpisodeState::kill: return "kill";
    case EpisodeState::failed: return "failed";
    case EpisodeState::kill_limited: return "kill_limited";
    case EpisodeState::spared: return "spared";
    case EpisodeState::protected_: return "protected";
    case EpisodeState::throttle: return "throttle";
    case EpisodeState::dry_run: return "dry_run";
    }
    return "alert";
}

std::optional<EpisodeState> episode_state_from_string(std::string_view text)
{
    for (const EpisodeState state : kEpisodeStates)
        if (to_string(state) == text)
            return state;
    return std::nullopt;
}

std::string to_string(const Episode &episode)
{
    std::string text(to_string(episode.state));
    if (episode.state == EpisodeState::dry_run)
        text += ":" + std::string(to_string(episode.dry_run_action));
    return text;
}

CgroupOffers probe_cgroup_offers(const std::string &cgroup_dir)
{
    std::error_code ec;
    CgroupOffers offers;
    offers.io_max = std::filesystem::exists(cgroup_dir + "/io.max", ec);
    offers.cgroup_kill = std::filesystem::exists(cgroup_dir + "/cgroup.kill", ec);
    return offers;
}

ThrottleChoice choose_throttle_mechanism(const Subject &subject, const CgroupOffers &offers, bool kernel_throttle)
{
    // io.max exists where the io controller is enabled for this cgroup: the
    // kernel then throttles the cgroup's writeback itself (on the one device
    // the subject wrote to: without it there is no line to write).
    if (subject.scope == RuleScope::cgroup && offers.io_max && !subject.dev.empty())
        return {Mechanism::io_max, {}};
    if (kernel_throttle)
        return {Mechanism::sigstop, {}};
    return {std::nullopt, "this agent has no kernel throttle (and the cgroup has no io.max)"};
}

Mechanism choose_kill_mechanism(const Subject &subject, const CgroupOffers &offers)
{
    return subject.scope == RuleScope::cgroup && offers.cgroup_kill ? Mechanism::cgroup_kill
                                                                    : Mechanism::pidfd_send_signal;
}

}  // namespace diskwatch
