#include "rules/rule_engine.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace diskwatch {

std::string Subject::key() const
{
    return scope == RuleScope::process ? "process:" + std::to_string(pid) : "cgroup:" + std::to_string(cgroup_id);
}

namespace {

// Cumulative value at time t, interpolated linearly between samples (the
// bytes of an interval are spread evenly over it).
double value_at(const std::deque<std::pair<double, double>> &history, double t)
{
    if (history.empty())
        return 0;
    if (t <= history.front().first)
        return history.front().second;
    if (t >= history.back().first)
        return history.back().second;
    auto after = std::lower_bound(history.begin(), history.end(), t,
                                  [](const std::pair<double, double> &sample, double time) { return sample.first < time; });
    auto before = after - 1;
    const double span = after->first - before->first;
    if (span <= 0)
        return after->second;
    return before->second + (after->second - before->second) * (t - before->first) / span;
}

// The window a history must keep: the longest look-back any condition needs.
double retention_s(const PolicyRule &rule)
{
    return std::max(rule.when.longest_window_s(), 2.0) + 1.0;
}

}  // namespace

bool volume_exceeds(const std::deque<std::pair<double, double>> &history, double rate_bps, double for_s,
                    double now_s, double *measured_bps)
{
    if (history.size() < 2)
        return false;
    if (for_s <= 0) {
        // One evaluation interval: the bytes since the previous evaluation.
        const auto &last = history.back();
        const auto &previous = history[history.size() - 2];
        const double span = last.first - previous.first;
        const double bytes = last.second - previous.second;
        if (measured_bps)
            *measured_bps = span > 0 ? bytes / span : 0;
        return span > 0 && bytes > rate_bps * span;
    }
    // Volume, not shape: however the bytes are spread over the window (one
    // burst, a duty cycle, a steady stream), more than R x D of them within
    // the last D seconds holds. A history shorter than the window counts
    // what it has: bytes the agent never saw are not assumed.
    //
    // The window starts at the first evaluation at or after now - D, so it
    // is never longer than D: an interval that straddles the window's start
    // may hold a burst from before it (interpolating it in would charge a
    // writer that never had R x D within any D). The cost: a crossing may be
    // seen one evaluation later. A window shorter than one interval has no
    // whole interval in it: then the last interval is spread evenly.
    const double start = now_s - for_s;
    auto first = std::lower_bound(history.begin(), history.end(), start - 1e-9,
                                  [](const std::pair<double, double> &sample, double time) { return sample.first < time; });
    const double bytes = first != history.end() && first->first < now_s - 1e-9
                             ? value_at(history, now_s) - first->second
                             : value_at(history, now_s) - value_at(history, start);
    if (measured_bps)
        *measured_bps = bytes / for_s;
    return bytes > rate_bps * for_s;
}

bool RuleEngine::row_matches(const PolicyRule &rule, const ReportRow &row)
{
    const auto &match = rule.match;
    if (!match.comm.empty() && !any_glob_matches(match.comm, row.comm))
        return false;
    if (!match.exe.empty() && !any_glob_matches(match.exe, row.exe))
        return false;
    if (!match.cgroup.empty() && !any_glob_matches(match.cgroup, row.cgroup))
        return false;
    // Container selectors match only what the runtime named: a row with no
    // known value (a host process, a container with no state on disk) is never
    // selected by them, not even by "*" (which then means "any container").
    auto selects = [](const std::vector<std::string> &globs, const std::string &value) {
        return globs.empty() || (!value.empty() && any_glob_matches(globs, value));
    };
    if (!selects(match.container, row.container_name) || !selects(match.image, row.container_image) ||
        !selects(match.compose_project, row.compose_project) || !selects(match.compose_service, row.compose_service))
        return false;
    if (!match.mount.empty() && !any_glob_matches(match.mount, row.mount))
        return false;
    if (!match.uid.empty() && std::find(match.uid.begin(), match.uid.end(), row.uid) == match.uid.end())
        return false;
    return true;
}

Subject subject_of(const ReportRow &row, RuleScope scope)
{
    Subject subject;
    subject.scope = scope;
    subject.cgroup_id = row.cgroup_id;
    subject.cgroup = row.cgroup;
    subject.container = row.container;
    subject.container_name = row.container_name;
    subject.container_image = row.container_image;
    subject.container_image_id = row.container_image_id;
    subject.compose_project = row.compose_project;
    subject.compose_service = row.compose_service;
    if (scope == RuleScope::process) {
        subject.pid = row.pid;
        subject.comm = row.comm;
        subject.exe = row.exe;
        subject.uid = row.uid;
        subject.start_boot_s = row.start_boot_s;
        subject.exited = row.exited;
    }
    subject.mount = row.mount;
    subject.dev = row.dev;
    subject.fstype = row.fstype;
    return subject;
}

std::vector<Finding> RuleEngine::evaluate(double now_s, const std::vector<ReportRow> &rows,
                                          const std::vector<MountState> &mounts)
{
    std::unordered_map<std::string, const MountState *> mount_of;
    for (const auto &mount : mounts)
        mount_of[mount.mount] = &mount;

    // A row's share of its mount's net growth: the mount grew by fill_bps,
    // and this row wrote write_bps of the mount's write_bps.
    // Never more than the growth of the files it wrote (the kernel measures
    // it): the mount's net growth is an average over seconds, and a steady
    // writer alone in an interval after another's burst would otherwise be
    // charged the burst's growth.
    auto growth_of = [&](const ReportRow &row) {
        auto it = mount_of.find(row.mount);
        if (it == mount_of.end() || !it->second->fill_bps || *it->second->fill_bps <= 0 || it->second->write_bps <= 0)
            return 0.0;
        return std::min(*it->second->fill_bps * std::min(1.0, row.write_bps / it->second->write_bps), row.growth_bps);
    };

    const double interval_s = last_eval_s_ ? std::max(0.0, now_s - *last_eval_s_) : 0.0;
    const double baseline_s = last_eval_s_.value_or(now_s);
    last_eval_s_ = now_s;

    // Per (rule, subject): this interval's bytes and growth, and which mount mattered most.
    struct Contribution {
        Subject subject;
        double bytes = 0;
        double growth_bps = 0;
        double top_mount_bytes = -1;
        std::optional<double> eta_full_s;
    };
    std::map<std::pair<size_t, std::string>, Contribution> contributions;
    for (size_t r = 0; r < rules_.size(); ++r) {
        const PolicyRule &rule = rules_[r];
        for (const auto &row : rows) {
            if (!row_matches(rule, row))
                continue;
            const Subject subject = subject_of(row, rule.scope);
            auto &contribution = contributions[{r, subject.key()}];
            if (contribution.top_mount_bytes < 0)
                contribution.subject = subject;
            contribution.bytes += static_cast<double>(row.write_bytes);
            const double growth = growth_of(row);
            contribution.growth_bps += growth;
            if (static_cast<double>(row.write_bytes) > contribution.top_mount_bytes) {
                // The subject is described by its largest row (process and mount).
                const bool exited = contribution.subject.exited && row.exited;
                contribution.top_mount_bytes = static_cast<double>(row.write_bytes);
                contribution.subject.mount = row.mount;
                contribution.subject.dev = row.dev;
                contribution.subject.fstype = row.fstype;
                if (auto mount = mount_of.find(row.mount); mount != mount_of.end()) {
                    contribution.subject.mount_used_pct = mount->second->used_pct;
                    contribution.subject.mount_eta_full_s = mount->second->eta_full_s;
                }
                if (rule.scope == RuleScope::cgroup) {
                    contribution.subject.pid = row.pid;
                    contribution.subject.comm = row.comm;
                    contribution.subject.exe = row.exe;
                    contribution.subject.uid = row.uid;
                    contribution.subject.start_boot_s = row.start_boot_s;
                } else {
                    contribution.subject.exited = exited || row.exited;
                }
            }
            if (auto it = mount_of.find(row.mount); it != mount_of.end() && growth > 0) {
                const double eta = static_cast<double>(it->second->available_bytes) / growth;
                if (!contribution.eta_full_s || eta < *contribution.eta_full_s)
                    contribution.eta_full_s = eta;
            }
        }
    }

    for (auto &[key, contribution] : contributions) {
        auto [it, fresh] = tracks_.try_emplace(key);
        Track &track = it->second;
        if (fresh) {
            // Its bytes were written after the previous evaluation.
            track.bytes.emplace_back(baseline_s, 0);
            track.growth.emplace_back(baseline_s, 0);
        }
        track.subject = contribution.subject;
        track.cumulative_bytes += contribution.bytes;
        track.cumulative_growth += contribution.growth_bps * interval_s;
        track.eta_full_s = contribution.eta_full_s;
        if (contribution.bytes > 0)
            track.last_bytes_s = now_s;
    }

    std::vector<Finding> findings;
    for (auto it = tracks_.begin(); it != tracks_.end();) {
        const size_t r = it->first.first;
        const PolicyRule &rule = rules_[r];
        Track &track = it->second;
        if (!contributions.count(it->first))
            track.eta_full_s.reset();  // no growth this interval
        track.bytes.emplace_back(now_s, track.cumulative_bytes);
        track.growth.emplace_back(now_s, track.cumulative_growth);
        const double keep_from = now_s - retention_s(rule);
        while (track.bytes.size() > 2 && track.bytes[1].first <= keep_from)
            track.bytes.pop_front();
        while (track.growth.size() > 2 && track.growth[1].first <= keep_from)
            track.growth.pop_front();

        RuleMeasures measures;
        const auto written_within = [&](double within_s) {
            return track.cumulative_bytes - value_at(track.bytes, now_s - within_s);
        };
        const auto condition_holds = [&](const Condition &condition) {
            switch (condition.kind) {
            case Condition::Kind::write_rate:
                return volume_exceeds(track.bytes, condition.threshold, condition.window_s, now_s);
            case Condition::Kind::growth_rate:
                return volume_exceeds(track.growth, condition.threshold, condition.window_s, now_s);
            case Condition::Kind::written:
                return std::llround(written_within(condition.window_s)) >= std::llround(condition.threshold);
            case Condition::Kind::eta_full:
                return track.eta_full_s && *track.eta_full_s < condition.threshold;
            case Condition::Kind::mount_usage:
                return track.subject.mount_used_pct >= condition.threshold;
            }
            return false;
        };
        // any: the first that holds names the condition; all: every one must.
        const Condition *first_held = nullptr;
        for (const auto &condition : rule.when.any)
            if (!first_held && condition_holds(condition))
                first_held = &condition;
        bool all_hold = true;
        for (const auto &condition : rule.when.all)
            all_hold = all_hold && condition_holds(condition);
        const bool held = (rule.when.any.empty() ? !rule.when.all.empty() : first_held != nullptr) && all_hold;
        if (held)
            measures.condition = std::string(to_string(first_held ? first_held->kind : rule.when.all.front().kind));
        // The numbers the events carry: over the window of the rule's first
        // condition of each kind (the last interval, or 10m for written, without one).
        const Condition *write_rate = rule.when.first(Condition::Kind::write_rate);
        const Condition *growth_rate = rule.when.first(Condition::Kind::growth_rate);
        const Condition *written = rule.when.first(Condition::Kind::written);
        double bps = 0;
        volume_exceeds(track.bytes, 0, write_rate ? write_rate->window_s : rule.when.longest_for_s(), now_s, &bps);
        measures.write_bps = std::max(0.0, bps);
        double growth_bps = 0;
        volume_exceeds(track.growth, 0, growth_rate ? growth_rate->window_s : 0, now_s, &growth_bps);
        measures.growth_bps = std::max(0.0, growth_bps);
        measures.written_bytes =
            static_cast<uint64_t>(std::max(0LL, std::llround(written_within(written ? written->window_s : 600))));
        measures.eta_full_s = track.eta_full_s;
        measures.held_now = held;
        measures.cumulative_bytes = track.cumulative_bytes;
        if (held) {
            track.last_held_s = now_s;
            track.measures = measures;
            if (!track.holding) {
                track.holding = true;
                findings.push_back({Finding::Change::started, r, track.subject, measures});
            }
        } else {
            const std::string condition = track.measures.condition;
            track.measures = measures;
            track.measures.condition = condition;
            // A state change, not a flicker: ended only after a quiet spell.
            if (track.holding && now_s - track.last_held_s >= std::max(rule.when.longest_for_s(), 1.0)) {
                track.holding = false;
                findings.push_back({Finding::Change::ended, r, track.subject, measures});
            }
        }
        // Forget subjects that are quiet and not holding.
        if (!track.holding && now_s - track.last_bytes_s > retention_s(rule))
            it = tracks_.erase(it);
        else
            ++it;
    }
    return findings;
}

bool RuleEngine::holds(size_t rule_index, const std::string &subject_key) const
{
    auto it = tracks_.find({rule_index, subject_key});
    return it != tracks_.end() && it->second.holding;
}

std::optional<RuleMeasures> RuleEngine::measures(size_t rule_index, const std::string &subject_key) const
{
    auto it = tracks_.find({rule_index, subject_key});
    if (it == tracks_.end())
        return std::nullopt;
    return it->second.measures;
}

std::vector<std::pair<size_t, Subject>> RuleEngine::holding() const
{
    std::vector<std::pair<size_t, Subject>> result;
    for (const auto &[key, track] : tracks_)
        if (track.holding)
            result.emplace_back(key.first, track.subject);
    return result;
}

}  // namespace diskwatch
