#include "actions/safety.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "events/events.h"

namespace diskwatch {

std::string Snoozes::key_of(const Subject &subject)
{
    if (subject.scope == RuleScope::cgroup)
        return subject.key();
    // The start time to the clock tick (as same_start compares): a reused pid is another process.
    return subject.key() + "@" + std::to_string(std::llround(subject.start_boot_s * 100));
}

void Snoozes::add(const Subject &subject, double now_s, double for_s)
{
    const auto wall = std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(for_s));
    const std::string target = subject.scope == RuleScope::process ? "process:" + std::to_string(subject.pid)
                                                                   : "cgroup:" + subject.cgroup;
    snoozes_[key_of(subject)] = {now_s + for_s, rfc3339_utc(wall), target};
    prune(now_s);
    while (snoozes_.size() > kMaxSnoozes) {
        auto soonest = snoozes_.begin();
        for (auto it = snoozes_.begin(); it != snoozes_.end(); ++it)
            if (it->second.until_s < soonest->second.until_s)
                soonest = it;
        snoozes_.erase(soonest);
    }
}

bool Snoozes::lift(const std::string &target)
{
    return std::erase_if(snoozes_, [&](const auto &entry) {
               return entry.second.target == "process:" + target || entry.second.target == "cgroup:" + target;
           }) > 0;
}

std::optional<Snoozes::Snooze> Snoozes::active(const Subject &subject, double now_s)
{
    auto it = snoozes_.find(key_of(subject));
    if (it == snoozes_.end())
        return std::nullopt;
    if (now_s >= it->second.until_s) {
        snoozes_.erase(it);
        return std::nullopt;
    }
    return it->second;
}

std::vector<Snoozes::Snooze> Snoozes::active_all(double now_s) const
{
    std::vector<Snooze> running;
    for (const auto &[key, snooze] : snoozes_)
        if (now_s < snooze.until_s)
            running.push_back(snooze);
    std::sort(running.begin(), running.end(),
              [](const Snooze &a, const Snooze &b) { return a.until_s < b.until_s; });
    return running;
}

void Snoozes::prune(double now_s)
{
    for (auto it = snoozes_.begin(); it != snoozes_.end();)
        it = now_s >= it->second.until_s ? snoozes_.erase(it) : std::next(it);
}

bool ActionPacer::ready(const std::string &key, double now_s, double delay_s) const
{
    auto it = last_action_s_.find(key);
    return it == last_action_s_.end() || now_s - it->second >= delay_s;
}

void ActionPacer::acted(const std::string &key, double now_s) { last_action_s_[key] = now_s; }

void ActionPacer::prune(double now_s, double delay_s)
{
    for (auto it = last_action_s_.begin(); it != last_action_s_.end();)
        it = now_s - it->second >= delay_s ? last_action_s_.erase(it) : std::next(it);
}

size_t KillBudget::in_window(double now_s, double window_s)
{
    while (!kills_s_.empty() && now_s - kills_s_.front() >= window_s)
        kills_s_.pop_front();
    return kills_s_.size();
}

bool KillBudget::allows(double now_s, uint32_t limit, double window_s)
{
    return limit == 0 || in_window(now_s, window_s) < limit;
}

namespace {

std::string mib(double bytes)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f MiB", bytes / (1024.0 * 1024.0));
    return text;
}

}  // namespace

SigkillRecheck recheck_before_sigkill(double bytes_at_sigterm, double bytes_now, double elapsed_s,
                                      std::optional<double> rate_bps, bool held_now)
{
    if (bytes_at_sigterm < 0 || bytes_now < 0)
        return {true, "no numbers since the SIGTERM"};
    const double written = std::max(0.0, bytes_now - bytes_at_sigterm);
    if (rate_bps) {
        const double allowed = *rate_bps * std::max(0.0, elapsed_s);
        if (written > allowed)
            return {true, "still writing after SIGTERM: " + mib(written) + " in the grace, more than the rule's rate"};
        return {false, "re-checked before SIGKILL: " + mib(written) + " written since SIGTERM, under the rule's rate: "
                       "it is winding down, so no SIGKILL"};
    }
    if (held_now && written > 0)
        return {true, "still writing after SIGTERM (" + mib(written) + ") and the rule still holds"};
    return {false, "re-checked before SIGKILL: the rule no longer holds or it stopped writing, so no SIGKILL"};
}

EscalationVerdict escalation_due(double stopped_s, double window_s, double throttle_to_bps,
                                 std::optional<double> rule_rate_bps)
{
    EscalationVerdict verdict;
    verdict.stopped_fraction = window_s > 0 ? std::clamp(stopped_s / window_s, 0.0, 1.0) : 0;
    const double f = verdict.stopped_fraction;
    if (f < 0.999)
        verdict.demand_bps = throttle_to_bps / (1 - f);
    char percent[16];
    std::snprintf(percent, sizeof(percent), "%.0f%%", f * 100);
    if (rule_rate_bps) {
        verdict.kill = !verdict.demand_bps || *verdict.demand_bps > *rule_rate_bps;
        verdict.why = std::string("escalate_after: stopped by its throttle ") + percent +
                      " of the time: it would write at " +
                      (verdict.demand_bps ? mib(*verdict.demand_bps) + "/s" : std::string("any speed")) +
                      (verdict.kill ? ", over" : ", not over") + " the rule's " + mib(*rule_rate_bps) + "/s";
    } else {
        verdict.kill = f > 0.5;
        verdict.why = std::string("escalate_after: stopped by its throttle ") + percent + " of the time" +
                      (verdict.kill ? " (most of it)" : "");
    }
    return verdict;
}

void order_for_action(std::vector<ActionCandidate> &candidates, const std::vector<PolicyRule> &rules)
{
    const auto tier = [&rules](const ActionCandidate &candidate) {
        const PolicyRule &rule = rules.at(candidate.rule_index);
        if (candidate.subject.scope != RuleScope::cgroup)
            return 1;
        if (any_glob_matches(rule.prefer, candidate.subject.cgroup))
            return 0;
        return any_glob_matches(rule.avoid, candidate.subject.cgroup) ? 2 : 1;
    };
    std::stable_sort(candidates.begin(), candidates.end(), [&](const ActionCandidate &a, const ActionCandidate &b) {
        const int tier_a = tier(a);
        const int tier_b = tier(b);
        return tier_a != tier_b ? tier_a < tier_b : a.measures.write_bps > b.measures.write_bps;
    });
}

std::optional<std::string> omit_reason(const PolicyRule &rule, const Subject &subject)
{
    if (subject.scope != RuleScope::cgroup)
        return std::nullopt;
    for (const auto &pattern : rule.omit)
        if (glob_matches(pattern, subject.cgroup))
            return "cgroup " + subject.cgroup + " matches the rule's omit " + pattern;
    return std::nullopt;
}

}  // namespace diskwatch
