#include "actions/enforcer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include <spdlog/spdlog.h>

#include "actions/cgroup_files.h"
#include "events/events.h"
#include "events/internal_errors.h"
#include "resolve/cgroups.h"
#include "views/json_report.h"

namespace diskwatch {

namespace fs = std::filesystem;

namespace {

double steady_now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A pidfd on the very process the rule saw writing: its pid and the start
// time read when its pid was first seen. A process that took the pid since
// (the writer exited, its exit record lost or not yet read) started later and
// is refused, whatever its name. The name is not compared: a writer renames
// itself at will (prctl), and a renamed runaway is the same process.
std::optional<Pidfd> open_subject(const Subject &subject, std::string *error)
{
    const auto pid = static_cast<pid_t>(subject.pid);
    if (subject.start_boot_s <= 0) {
        *error = "pid " + std::to_string(pid) +
                 ": its start time was not read when its writes were seen, so it cannot be told from a later "
                 "process on the same pid";
        return std::nullopt;
    }
    return Pidfd::open(pid, "", subject.start_boot_s, error);
}

}  // namespace

struct Enforcer::Throttle {
    std::string key;
    std::string rule;
    Subject subject;
    std::string mechanism;  // io.max | cgroup.freeze | sigstop
    double rate_bps = 0;
    double since_s = 0;
    double until_s = 0;
    std::optional<Pidfd> pidfd;  // sigstop
    double start_boot_s = 0;     // sigstop: for the state file
    std::string cgroup_path;     // cgroup.freeze, io.max
    std::string io_dev;          // io.max
    // Duty cycle: a token bucket at rate_bps over the kernel's byte count.
    std::optional<uint64_t> last_bytes;
    double last_tick_s = 0;
    double allowance = 0;
    bool paused = false;
    bool mark_warned = false;  // cgroup.freeze: the setxattr failure was reported
};

struct Enforcer::Kill {
    std::string key;
    std::string rule;
    Subject subject;
    std::string mechanism;
    std::vector<Pidfd> targets;
    std::string cgroup_path;
    double deadline_s = 0;
    double give_up_s = 0;
    bool escalated = false;
};

Enforcer::Enforcer(EnforcerOptions options)
    : options_(std::move(options)),
      protection_(std::make_unique<Protection>(ProtectList{}, options_.agent_pid, options_.cgroup2_mount))
{
    duty_cycle_ = std::thread([this] { duty_cycle_loop(); });
}

Enforcer::~Enforcer()
{
    release_all("agent stop");
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    duty_cycle_wake_.notify_all();
    duty_cycle_.join();
}

void Enforcer::set_policy(const Policy &policy, bool dry_run)
{
    std::lock_guard lock(mutex_);
    protection_ = std::make_unique<Protection>(policy.protect, options_.agent_pid, options_.cgroup2_mount);
    dry_run_ = dry_run;
}

bool Enforcer::is_acting_on(const std::string &subject_key) const
{
    std::lock_guard lock(mutex_);
    return throttles_.count(subject_key) || kills_.count(subject_key);
}

nlohmann::json Enforcer::action_event(const std::string &action, const PolicyRule *rule, const Subject &subject,
                                      const RuleMeasures *measures, const std::string &mechanism) const
{
    auto event = diskwatch::action_event(options_.host, action, rule ? &rule->name : nullptr, subject, mechanism,
                                         dry_run_);
    if (measures) {
        event["write_bps"] = std::round(measures->write_bps);
        event["growth_bps"] = std::round(measures->growth_bps);
        event["condition"] = measures->condition;
    }
    if (rule)
        event["when"] = rule_json(*rule);
    return event;
}

void Enforcer::enforce(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s)
{
    const std::string key = subject.key();
    const std::string announce_key = key + "|" + rule.name;
    std::unique_lock lock(mutex_);
    if (rule.action == RuleAction::alert) {
        if (announced_[announce_key] == "alert")
            return;
        announced_[announce_key] = "alert";
        auto event = action_event("alert", &rule, subject, &measures, "event");
        if (auto reason = protection_->subject_reason(subject)) {
            event["protected"] = true;
            event["protected_reason"] = *reason;
        }
        lock.unlock();
        options_.emit(event);
        return;
    }
    if (throttles_.count(key) || kills_.count(key))
        return;  // already acting on it (a throttle holds until throttle_for ends)
    if (subject.scope == RuleScope::process && subject.exited)
        return;  // nothing to act on
    if (rule.action == RuleAction::kill && announced_[announce_key] == "kill")
        return;  // killed once this episode; the rule ends when its writes stop
    if (announced_[announce_key] == "failed")
        return;  // said once (agent.warning); retried in the rule's next episode
    // Protection is decided once per episode of the rule (reading /proc for a
    // cgroup's members at every evaluation would cost more than it tells).
    if (announced_[announce_key] == "protected")
        return;
    if (auto reason = protection_->subject_reason(subject)) {
        announced_[announce_key] = "protected";
        auto event = action_event(std::string(to_string(rule.action)), &rule, subject, &measures, "none");
        event["protected"] = true;
        event["protected_reason"] = *reason;
        lock.unlock();
        options_.emit(event);
        return;
    }
    if (dry_run_) {
        const std::string state = std::string("dry_run:") + std::string(to_string(rule.action));
        if (announced_[announce_key] == state)
            return;
        announced_[announce_key] = state;
        std::string mechanism;
        if (rule.action == RuleAction::kill)
            mechanism = subject.scope == RuleScope::cgroup && fs::exists(cgroup_dir(subject.cgroup) + "/cgroup.kill")
                            ? "cgroup.kill"
                            : "pidfd_send_signal";
        else if (subject.scope == RuleScope::cgroup)
            mechanism = fs::exists(cgroup_dir(subject.cgroup) + "/io.max") ? "io.max" : "cgroup.freeze";
        else
            mechanism = "sigstop";
        auto event = action_event(std::string(to_string(rule.action)), &rule, subject, &measures, mechanism);
        if (rule.throttle_to_bps) {
            event["throttle_to_bps"] = *rule.throttle_to_bps;
            event["throttle_for_s"] = rule.throttle_for_s;
        }
        if (rule.action == RuleAction::kill)
            event["kill_grace_s"] = rule.kill_grace_s;
        lock.unlock();
        options_.emit(event);
        return;
    }
    lock.unlock();
    if (rule.action == RuleAction::kill)
        start_kill(rule, subject, measures, now_s);
    else
        start_throttle(rule, subject, measures, now_s);
}

void Enforcer::action_failed(const PolicyRule &rule, const Subject &subject, const std::string &error)
{
    spdlog::warn("rule {}: cannot {} {}: {}", rule.name, to_string(rule.action), subject.key(), error);
    auto event = make_event("agent.warning", options_.host);
    event["warning"] = std::string("cannot ") + std::string(to_string(rule.action)) + ": " + error;
    event["rule"] = rule.name;
    event["process"] = process_json(subject);
    event["cgroup"] = cgroup_json(subject.cgroup_id, subject.cgroup);
    std::lock_guard lock(mutex_);
    announced_[subject.key() + "|" + rule.name] = "failed";
    options_.emit(event);
}

void Enforcer::start_kill(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s)
{
    auto kill = std::make_unique<Kill>();
    kill->key = subject.key();
    kill->rule = rule.name;
    kill->subject = subject;
    kill->deadline_s = now_s + rule.kill_grace_s;
    kill->give_up_s = kill->deadline_s + 10;
    std::string error;
    if (subject.scope == RuleScope::process) {
        auto pidfd = open_subject(subject, &error);
        if (!pidfd) {
            action_failed(rule, subject, error);
            return;
        }
        kill->targets.push_back(std::move(*pidfd));
        kill->mechanism = "pidfd_send_signal";
    } else {
        kill->cgroup_path = cgroup_dir(subject.cgroup);
        kill->mechanism = fs::exists(kill->cgroup_path + "/cgroup.kill") ? "cgroup.kill" : "pidfd_send_signal";
        for (pid_t pid : cgroup_processes(kill->cgroup_path))
            if (auto pidfd = Pidfd::open(pid, "", 0, &error))
                kill->targets.push_back(std::move(*pidfd));
    }
    {
        // A throttled subject is released first, so SIGTERM can be handled.
        std::lock_guard lock(mutex_);
        if (auto it = throttles_.find(kill->key); it != throttles_.end())
            release_locked(it, "killing it");
    }
    const bool immediate = rule.kill_grace_s <= 0;
    const int first_signal = immediate ? SIGKILL : SIGTERM;
    if (immediate && kill->mechanism == "cgroup.kill") {
        if (!write_control(kill->cgroup_path + "/cgroup.kill", "1", &error))
            spdlog::warn("rule {}: {}", rule.name, error);
    } else {
        for (const auto &target : kill->targets) {
            if (!target.signal(first_signal, &error))
                spdlog::warn("rule {}: {}", rule.name, error);
            target.signal(SIGCONT);  // a stopped process must run to handle SIGTERM
        }
    }
    kill->escalated = immediate;
    auto event = action_event("kill", &rule, subject, &measures, kill->mechanism);
    event["signal"] = immediate ? "SIGKILL" : "SIGTERM";
    event["kill_grace_s"] = rule.kill_grace_s;
    event["targets"] = kill->targets.size();
    std::lock_guard lock(mutex_);
    announced_[kill->key + "|" + rule.name] = "kill";
    kills_[kill->key] = std::move(kill);
    options_.emit(event);
}

void Enforcer::start_throttle(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures,
                              double now_s)
{
    auto throttle = std::make_unique<Throttle>();
    throttle->key = subject.key();
    throttle->rule = rule.name;
    throttle->subject = subject;
    throttle->rate_bps = *rule.throttle_to_bps;
    throttle->since_s = now_s;
    throttle->until_s = now_s + rule.throttle_for_s;
    throttle->last_tick_s = now_s;
    throttle->allowance = 0;
    std::string error;
    if (subject.scope == RuleScope::process) {
        auto pidfd = open_subject(subject, &error);
        if (!pidfd) {
            action_failed(rule, subject, error);
            return;
        }
        throttle->start_boot_s = subject.start_boot_s;
        throttle->pidfd = std::move(*pidfd);
        throttle->mechanism = "sigstop";
    } else {
        throttle->cgroup_path = cgroup_dir(subject.cgroup);
        // io.max exists where the io controller is enabled for this cgroup:
        // the kernel then throttles the writeback itself.
        if (fs::exists(throttle->cgroup_path + "/io.max") && !subject.dev.empty() &&
            write_control(throttle->cgroup_path + "/io.max",
                          subject.dev + " wbps=" + std::to_string(static_cast<uint64_t>(throttle->rate_bps)), &error)) {
            throttle->mechanism = "io.max";
            throttle->io_dev = subject.dev;
        } else if (fs::exists(throttle->cgroup_path + "/cgroup.freeze")) {
            throttle->mechanism = "cgroup.freeze";
        } else {
            action_failed(rule, subject, "cgroup " + subject.cgroup + " has neither io.max nor cgroup.freeze");
            return;
        }
    }
    auto event = action_event("throttle", &rule, subject, &measures, throttle->mechanism);
    event["throttle_to_bps"] = throttle->rate_bps;
    event["throttle_for_s"] = rule.throttle_for_s;
    std::lock_guard lock(mutex_);
    announced_[throttle->key + "|" + rule.name] = "throttle";
    throttles_[throttle->key] = std::move(throttle);
    save_state_locked();
    duty_cycle_wake_.notify_all();
    options_.emit(event);
}

void Enforcer::release_locked(std::map<std::string, std::unique_ptr<Throttle>>::iterator it,
                              const std::string &reason)
{
    Throttle &throttle = *it->second;
    std::string error;
    if (throttle.mechanism == "sigstop") {
        if (throttle.pidfd && !throttle.pidfd->exited())
            throttle.pidfd->signal(SIGCONT, &error);
    } else if (throttle.mechanism == "cgroup.freeze") {
        if (throttle.paused && !write_control(throttle.cgroup_path + "/cgroup.freeze", "0", &error))
            spdlog::warn("release {}: {}", throttle.key, error);
        ::removexattr(throttle.cgroup_path.c_str(), kFrozenXattr);
    } else if (throttle.mechanism == "io.max") {
        write_control(throttle.cgroup_path + "/io.max", throttle.io_dev + " wbps=max", &error);
    }
    auto event = action_event("release", nullptr, throttle.subject, nullptr, throttle.mechanism);
    event["rule"] = throttle.rule;
    event["reason"] = reason;
    event["dry_run"] = false;
    announced_.erase(throttle.key + "|" + throttle.rule);
    throttles_.erase(it);
    save_state_locked();
    options_.emit(event);
}

void Enforcer::tick(double now_s)
{
    std::lock_guard lock(mutex_);
    for (auto it = throttles_.begin(); it != throttles_.end();) {
        auto next = std::next(it);
        Throttle &throttle = *it->second;
        if (throttle.pidfd && throttle.pidfd->exited())
            release_locked(it, "exited");
        else if (now_s >= throttle.until_s)
            release_locked(it, "throttle_for ended");
        it = next;
    }
    for (auto it = kills_.begin(); it != kills_.end();) {
        Kill &kill = *it->second;
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
            std::string error;
            if (kill.mechanism == "cgroup.kill") {
                if (!write_control(kill.cgroup_path + "/cgroup.kill", "1", &error))
                    spdlog::warn("{}: {}", kill.key, error);
            } else {
                for (const auto &target : kill.targets)
                    if (!target.exited())
                        target.signal(SIGKILL, &error);
            }
            auto event = action_event("kill", nullptr, kill.subject, nullptr, kill.mechanism);
            event["rule"] = kill.rule;
            event["signal"] = "SIGKILL";
            event["reason"] = "still running after kill_grace";
            options_.emit(event);
        }
        ++it;
    }
}

bool Enforcer::needs_ticks() const
{
    std::lock_guard lock(mutex_);
    return !throttles_.empty() || !kills_.empty();
}

bool Enforcer::release(const std::string &target, const std::string &reason, std::string *error)
{
    std::lock_guard lock(mutex_);
    for (auto it = throttles_.begin(); it != throttles_.end(); ++it) {
        const Subject &subject = it->second->subject;
        const bool match = subject.scope == RuleScope::process ? target == std::to_string(subject.pid)
                                                               : target == subject.cgroup || target == it->second->cgroup_path;
        if (match) {
            release_locked(it, reason);
            return true;
        }
    }
    *error = "nothing throttled matches " + target;
    return false;
}

void Enforcer::release_all(const std::string &reason)
{
    std::lock_guard lock(mutex_);
    while (!throttles_.empty())
        release_locked(throttles_.begin(), reason);
}

void Enforcer::rule_ended(const PolicyRule &rule, const Subject &subject)
{
    std::lock_guard lock(mutex_);
    announced_.erase(subject.key() + "|" + rule.name);
}

std::vector<ActiveAction> Enforcer::active() const
{
    std::lock_guard lock(mutex_);
    std::vector<ActiveAction> actions;
    for (const auto &[key, throttle] : throttles_)
        actions.push_back({throttle->subject.scope == RuleScope::process ? "process:" + std::to_string(throttle->subject.pid)
                                                                         : "cgroup:" + throttle->subject.cgroup,
                           throttle->rule, "throttle", throttle->mechanism, throttle->since_s, throttle->until_s,
                           throttle->paused});
    for (const auto &[key, kill] : kills_)
        actions.push_back({kill->subject.scope == RuleScope::process ? "process:" + std::to_string(kill->subject.pid)
                                                                     : "cgroup:" + kill->subject.cgroup,
                           kill->rule, "kill", kill->mechanism, kill->deadline_s, kill->give_up_s, false});
    return actions;
}

// The duty cycle: every tick, each throttled subject's bytes (counted by the
// kernel) are charged against an allowance that refills at throttle_to; the
// subject is stopped (SIGSTOP / cgroup.freeze) while the allowance is
// negative and continued once it is back. The allowance is capped at 100 ms
// of the rate so an idle spell buys no burst.
void Enforcer::duty_cycle_loop()
{
    for (;;) {
        if (catch_at_boundary("duty cycle", [this] { duty_cycle_serve(); }))
            return;
        std::this_thread::sleep_for(std::chrono::duration<double>(options_.duty_cycle_tick_s));
    }
}

void Enforcer::duty_cycle_serve()
{
    const auto tick = std::chrono::duration<double>(options_.duty_cycle_tick_s);
    std::unique_lock lock(mutex_);
    for (;;) {
        // Nothing throttled: sleep until a throttle starts (or we stop).
        duty_cycle_wake_.wait(lock, [this] { return stopping_ || !throttles_.empty(); });
        if (stopping_)
            return;
        // Throttling: tick. The lock is free while we sleep.
        duty_cycle_wake_.wait_for(lock, tick, [this] { return stopping_; });
        if (stopping_)
            return;
        const double now = steady_now_s();
        for (auto &[key, throttle] : throttles_) {
            if (throttle->mechanism == "io.max")
                continue;
            const uint64_t id = throttle->subject.scope == RuleScope::process ? throttle->subject.pid
                                                                               : throttle->subject.cgroup_id;
            auto bytes = options_.bytes_counted(throttle->subject.scope, id);
            const double dt = now - throttle->last_tick_s;
            throttle->last_tick_s = now;
            if (!bytes)
                continue;
            const double written = throttle->last_bytes ? static_cast<double>(*bytes - *throttle->last_bytes) : 0;
            throttle->last_bytes = bytes;
            throttle->allowance = std::min(throttle->allowance + throttle->rate_bps * dt - written,
                                           throttle->rate_bps * 0.1);
            const bool want_paused = throttle->allowance < 0;
            if (want_paused == throttle->paused)
                continue;
            std::string error;
            bool ok;
            if (throttle->mechanism == "sigstop") {
                ok = throttle->pidfd->signal(want_paused ? SIGSTOP : SIGCONT, &error);
            } else {
                // The mark lets a restarted agent find a freeze newer than
                // its state file. Without it (no CAP_SYS_ADMIN, a filesystem
                // without trusted xattrs) the state file and the guard still
                // release it: said once per throttle, never silently.
                if (want_paused &&
                    ::setxattr(throttle->cgroup_path.c_str(), kFrozenXattr, options_.state_dir.data(),
                               options_.state_dir.size(), 0) != 0 &&
                    !throttle->mark_warned) {
                    throttle->mark_warned = true;
                    auto event = make_event("agent.warning", options_.host);
                    event["warning"] = std::string("cannot mark the frozen cgroup for a restarted agent (setxattr ") +
                                       kFrozenXattr + "): " + std::strerror(errno);
                    event["cgroup"] = cgroup_json(throttle->subject.cgroup_id, throttle->subject.cgroup);
                    options_.emit(event);
                }
                ok = write_control(throttle->cgroup_path + "/cgroup.freeze", want_paused ? "1" : "0", &error);
            }
            if (ok)
                throttle->paused = want_paused;
            else
                spdlog::debug("duty cycle {}: {}", key, error);
        }
    }
}

// state.json (actions/held_state.h): what a crash would leave stopped or
// frozen. Written whenever a throttle starts or ends.
void Enforcer::save_state_locked()
{
    HeldState state;
    state.agent_pid = options_.agent_pid;
    for (const auto &[key, throttle] : throttles_) {
        if (throttle->mechanism == "sigstop")
            state.stopped.push_back({static_cast<pid_t>(throttle->subject.pid), throttle->start_boot_s,
                                     throttle->subject.comm});
        else if (throttle->mechanism == "cgroup.freeze")
            state.frozen.push_back(throttle->cgroup_path);
        else if (throttle->mechanism == "io.max")
            state.io_max.push_back({throttle->cgroup_path, throttle->io_dev});
    }
    std::string error;
    const bool saved = save_held_state(options_.state_dir, state, &error);
    if (saved == !state_save_failing_)
        return;
    state_save_failing_ = !saved;
    if (saved)
        return;
    // Said once per failing episode: until the file can be written, neither the
    // guard nor a restarted agent knows what this agent holds stopped.
    spdlog::warn("cannot write the state file: {}", error);
    auto event = make_event("agent.warning", options_.host);
    event["warning"] = "cannot write the state file (" + error +
                       "): a crash of the agent now would leave what it stopped or froze until someone continues it";
    options_.emit(event);
}

size_t Enforcer::reconcile()
{
    std::string error;
    const auto state = load_held_state(options_.state_dir, &error);
    if (!error.empty())
        spdlog::warn("{}; scanning only", error);
    const std::string previous = state ? " (pid " + std::to_string(state->agent_pid) + ")" : "";
    const auto released = release_held(state, options_.state_dir, options_.cgroup2_mount);
    for (const auto &release : released) {
        std::string detail = "a previous agent" + previous + " had stopped it";
        if (release.mechanism == "io.max")
            detail = "a previous agent had limited it";
        else if (release.mechanism == "cgroup.freeze")
            detail = "a previous agent had frozen it";
        options_.emit(release_event(options_.host, released_subject(release), release.mechanism, "reconcile: " + detail));
    }
    std::lock_guard lock(mutex_);
    save_state_locked();
    return released.size();
}

}  // namespace diskwatch
