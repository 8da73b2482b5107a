// Enforcer: kills (SIGTERM, the re-check, SIGKILL after kill_grace) and the
// host-wide kill limit. The rest of the class: enforcer.cpp.
#include <signal.h>


#include <spdlog/spdlog.h>

#include "actions/cgroup_files.h"
#include "actions/enforcer_kills.h"
#include "events/events.h"
#include "resolve/cgroups.h"

namespace diskwatch {

std::optional<Pidfd> Enforcer::open_subject(const PolicyRule &rule, const Subject &subject)
{
    const auto pid = static_cast<pid_t>(subject.pid);
    std::string error;
    std::optional<Pidfd> pidfd;
    if (subject.start_boot_s <= 0)
        error = "pid " + std::to_string(pid) +
                ": its start time was not read when its writes were seen, so it cannot be told from a later "
                "process on the same pid";
    else
        pidfd = Pidfd::open(pid, "", subject.start_boot_s, &error);
    if (!pidfd)
        action_failed(rule, subject, error);
    return pidfd;
}

// Past safety.kill_limit kills within safety.kill_window, host-wide, a kill
// becomes an alert that says so, for the rest of the rule's episode.
bool Enforcer::kill_allowed(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures,
                            double now_s)
{
    std::unique_lock lock(mutex_);
    if (kill_budget_.allows(now_s, safety_.kill_limit, safety_.kill_window_s)) {
        kill_budget_.spent(now_s);
        return true;
    }
    announced_[subject.key() + "|" + rule.name] = {EpisodeState::kill_limited};
    auto event = action_event("alert", &rule, subject, &measures, Mechanism::event);
    event.instead_of("kill");
    event.reason("safety.kill_limit: " + std::to_string(safety_.kill_limit) + " kills within " +
                 std::to_string(static_cast<long long>(safety_.kill_window_s)) +
                 " s host-wide already; this one is an alert");
    lock.unlock();
    spdlog::warn("rule {}: not killing {}: {}", rule.name, subject.key(), event.get("reason").get<std::string>());
    options_.emit(event.build());
    return false;
}

void Enforcer::start_kill(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s,
                          const nlohmann::json &detail)
{
    if (!kill_allowed(rule, subject, measures, now_s))
        return;
    auto kill = std::make_unique<Kill>();
    kill->key = subject.key();
    kill->rule = rule.name;
    kill->subject = subject;
    kill->deadline_s = now_s + rule.kill_grace_s;
    kill->give_up_s = kill->deadline_s + 10;
    kill->sigterm_s = now_s;
    kill->bytes_at_sigterm = measures.cumulative_bytes;
    kill->bytes_now = measures.cumulative_bytes;
    kill->held_now = measures.held_now;
    kill->rate_bps = rule.when.lowest(Condition::Kind::write_rate);
    std::string error;
    if (subject.scope == RuleScope::process) {
        auto pidfd = open_subject(rule, subject);
        if (!pidfd)
            return;  // said (action_failed)
        kill->targets.push_back(std::move(*pidfd));
    } else {
        kill->cgroup_path = cgroup_dir(subject.cgroup);
        for (pid_t pid : cgroup_processes(kill->cgroup_path))
            if (auto pidfd = Pidfd::open(pid, "", 0, &error))
                kill->targets.push_back(std::move(*pidfd));
    }
    // The one choice (dry run makes it too).
    kill->mechanism = choose_kill_mechanism(subject, cgroup_offers(subject));
    kill->grace_s = rule.kill_grace_s;
    kill->first_event = action_event("kill", &rule, subject, &measures, kill->mechanism);
    for (const char *field : {"requested", "requested_uid", "requested_pid"})
        if (kill->first_event->has(field))
            kill->requested[field] = kill->first_event->get(field);
    kill->first_event->kill_grace(rule.kill_grace_s);
    kill->first_event->merge(detail);
    if (!rule.pre_kill.empty()) {
        // Started now, waited for by tick(): the agent goes on with everything else meanwhile.
        const std::vector<std::string> environment = {
            "DW_RULE=" + rule.name, "DW_SCOPE=" + std::string(to_string(subject.scope)),
            "DW_PID=" + std::to_string(subject.pid), "DW_COMM=" + subject.comm, "DW_CGROUP=" + subject.cgroup,
            "DW_MOUNT=" + subject.mount};
        kill->hook = HookRun::start(rule.pre_kill, environment, now_s, rule.pre_kill_timeout_s, &error);
        if (!kill->hook) {
            spdlog::warn("rule {}: {}: killing without it", rule.name, error);
            kill->hook_error = {{"argv", rule.pre_kill}, {"error", error}};
        }
    }
    std::lock_guard lock(mutex_);
    announced_[kill->key + "|" + rule.name] = {EpisodeState::kill};
    pacer_.acted(kill->key, now_s);
    Kill &started = *kill;
    kills_[kill->key] = std::move(kill);
    if (!started.hook)
        signal_kill_locked(started, now_s);
    else
        started.give_up_s = now_s + rule.pre_kill_timeout_s + rule.kill_grace_s + 10;
}

// SIGTERM (SIGKILL with kill_grace 0), once the pre_kill hook is over.
void Enforcer::signal_kill_locked(Kill &kill, double now_s)
{
    // A throttled subject is released first, so SIGTERM can be handled.
    if (auto it = throttles_.find(kill.key); it != throttles_.end())
        release_locked(it, "killing it");
    std::string error;
    const bool immediate = kill.grace_s <= 0;
    if (immediate && kill.mechanism == Mechanism::cgroup_kill) {
        if (!write_control(kill.cgroup_path + "/cgroup.kill", "1", &error))
            spdlog::warn("rule {}: {}", kill.rule, error);
    } else {
        for (const auto &target : kill.targets) {
            if (!target.signal(immediate ? SIGKILL : SIGTERM, &error))
                spdlog::warn("rule {}: {}", kill.rule, error);
            target.signal(SIGCONT);  // a stopped process must run to handle SIGTERM
        }
    }
    kill.escalated = immediate;
    kill.sigterm_s = now_s;
    kill.deadline_s = now_s + kill.grace_s;
    kill.give_up_s = kill.deadline_s + 10;
    auto event = std::move(*kill.first_event);
    kill.first_event.reset();
    event.signal(immediate ? "SIGKILL" : "SIGTERM");
    event.targets(kill.targets.size());
    if (kill.hook)
        event.pre_kill(kill.hook->result());
    else if (!kill.hook_error.is_null())
        event.pre_kill(kill.hook_error);
    options_.emit(event.build());
}

// The agent's evaluation while a kill is in progress: the numbers the
// re-check before SIGKILL needs.
void Enforcer::note_kill_progress_locked(const std::string &key, const RuleMeasures &measures)
{
    auto it = kills_.find(key);
    if (it == kills_.end())
        return;
    it->second->bytes_now = measures.cumulative_bytes;
    it->second->held_now = measures.held_now;
}

void Enforcer::tick_kills_locked(double now_s)
{
    reap_hooks();
    for (auto it = kills_.begin(); it != kills_.end();) {
        Kill &kill = *it->second;
        if (kill.hook && kill.first_event) {
            if (!kill.hook->poll(now_s)) {
                ++it;  // its hook runs on: this kill waits, no other
                continue;
            }
            signal_kill_locked(kill, now_s);
        }
        bool all_gone = true;
        for (const auto &target : kill.targets)
            all_gone = all_gone && target.exited();
        if (kill.subject.scope == RuleScope::cgroup)
            all_gone = all_gone && cgroup_processes(kill.cgroup_path).empty();
        if (all_gone || now_s > kill.give_up_s) {
            it = kills_.erase(it);
            continue;
        }
        if (!kill.escalated && now_s >= kill.deadline_s) {
            kill.escalated = true;
            const auto recheck = safety_.recheck_before_sigkill
                                     ? recheck_before_sigkill(kill.bytes_at_sigterm, kill.bytes_now,
                                                              now_s - kill.sigterm_s, kill.rate_bps, kill.held_now)
                                     : SigkillRecheck {true, "still running after kill_grace"};
            auto event = action_event("kill", nullptr, kill.subject, nullptr, kill.mechanism);
            event.rule(kill.rule);
            event.merge(kill.requested);
            if (!recheck.sigkill) {
                // Spared: it is winding down. Should its conditions hold
                // again (not merely the rule's quiet spell), a new kill
                // starts (after safety.action_delay).
                event.signal("none");
                event.reason(recheck.why);
                announced_[kill.key + "|" + kill.rule] = {EpisodeState::spared};
                it = kills_.erase(it);
                options_.emit(event.build());
                continue;
            }
            std::string error;
            if (kill.mechanism == Mechanism::cgroup_kill) {
                if (!write_control(kill.cgroup_path + "/cgroup.kill", "1", &error))
                    spdlog::warn("{}: {}", kill.key, error);
            } else {
                for (const auto &target : kill.targets)
                    if (!target.exited())
                        target.signal(SIGKILL, &error);
            }
            event.signal("SIGKILL");
            event.reason(safety_.recheck_before_sigkill ? "still running after kill_grace; " + recheck.why
                                                        : recheck.why);
            options_.emit(event.build());
        }
        ++it;
    }
}

}  // namespace diskwatch
