#include "actions/enforcer.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "actions/cgroup_files.h"
#include "actions/enforcer_kills.h"
#include "events/events.h"
#include "vocabulary/internal_errors.h"
#include "vocabulary/json_names.h"
#include "resolve/processes.h"
#include "resolve/cgroups.h"
#include "rules/units.h"
#include "vocabulary/steady_clock.h"

namespace diskwatch {

struct Enforcer::Throttle {
    std::string key;
    std::string rule;
    Subject subject;
    Mechanism mechanism = Mechanism::sigstop;  // io.max | sigstop
    double rate_bps = 0;
    double since_s = 0;
    double until_s = 0;
    std::optional<Pidfd> pidfd;  // sigstop, process scope
    double start_boot_s = 0;     // sigstop, process scope: for the state file
    std::string cgroup_path;     // cgroup scope
    std::string io_dev;          // io.max
    // sigstop: the kernel's throttle (process: the pid; cgroup: its id).
    RuleScope kernel_scope = RuleScope::process;
    uint64_t kernel_id = 0;
    bool paused = false;  // a writer of it is stopped now
    // escalate_after (sigstop): the time it spent stopped, counted at each of
    // the continuer's looks, and the window being judged.
    double stopped_s = 0;
    double last_look_s = 0;
    std::shared_ptr<const PolicyRule> escalate;  // the rule, when it has escalate_after
    double window_start_s = 0;
    double stopped_at_window_start_s = 0;
    uint64_t stops = 0;
    // SIGCONTs from others: in all (the kernel counts them), and how many
    // the last throttle.defied event had reported.
    uint64_t defied = 0;
    uint64_t defied_reported = 0;
    double defied_reported_s = -1e300;
    // Cgroup scope: every member the kernel has stopped, by pid, with its
    // start: in state.json too, so that one moved out of the cgroup while
    // stopped is still continued by the guard or the next agent.
    std::map<pid_t, double> members_stopped;
};

namespace {

// The bank of a throttle held in the kernel: a tenth of a second of its
// rate (so a writer idle for a while gains at most that), and at least a
// page. Within a 5 s window this is at most 2% of the rate.
double kernel_burst_bytes(double rate_bps) { return std::max(4096.0, rate_bps * 0.1); }

// Rates the kernel's arithmetic takes (elapsed_us x rate < 2^64 for 10 s).
constexpr double kMaxKernelRateBps = 1024.0 * 1024 * 1024 * 1024;

}  // namespace


Enforcer::Enforcer(EnforcerOptions options)
    : options_(std::move(options)),
      protection_(std::make_unique<Protection>(ProtectList{}, options_.agent_pid, options_.cgroup2_mount,
                                               ProtectedExes::Options{}, options_.containers))
{
    if (options_.kernel && options_.agent_pid > 0)
        options_.kernel->exempt(options_.agent_pid);
    continuer_ = std::thread([this] { continuer_loop(); });
}

Enforcer::~Enforcer()
{
    release_all("agent stop");
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    continuer_wake_.notify_all();
    continuer_.join();
    if (!options_.kernel)
        return;
    // A hook that read a throttle just before release_all removed it may
    // stop its writer after the continue: look once more, a little later.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard lock(mutex_);
    for (const auto &stop : options_.kernel->stopped())
        continue_stopped_locked(stop, nullptr);
}

void Enforcer::set_policy(const Policy &policy, bool dry_run)
{
    // Updated in place (its own lock), never replaced: the identities of
    // protected executables seen so far survive a reload.
    protection_->set_list(policy.protect);
    std::lock_guard lock(mutex_);
    dry_run_ = dry_run;
    safety_ = policy.safety;
}

bool Enforcer::is_acting_on(const std::string &subject_key) const
{
    std::lock_guard lock(mutex_);
    return throttles_.count(subject_key) || kills_.count(subject_key);
}

CgroupOffers Enforcer::cgroup_offers(const Subject &subject) const
{
    return subject.scope == RuleScope::cgroup ? probe_cgroup_offers(cgroup_dir(subject.cgroup)) : CgroupOffers{};
}

std::optional<EpisodeState> Enforcer::announced_locked(const std::string &announce_key) const
{
    const auto it = announced_.find(announce_key);
    return it == announced_.end() ? std::nullopt : std::optional(it->second.state);
}

ActionEvent Enforcer::action_event(const std::string &action, const PolicyRule *rule, const Subject &subject,
                                   const RuleMeasures *measures, Mechanism mechanism) const
{
    ActionEvent event(options_.host, action, rule ? &rule->name : nullptr, subject, to_string(mechanism), dry_run_);
    if (measures)
        event.measures(*measures);
    if (rule && rule->requested) {
        // An operator's request (top): who asked, and no conditions to show.
        event.requested(*rule->requested);
    } else if (rule) {
        event.when(*rule);
    }
    return event;
}

void Enforcer::enforce(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures, double now_s)
{
    const std::string key = subject.key();
    const std::string announce_key = key + "|" + rule.name;
    std::unique_lock lock(mutex_);
    const auto announced = [&] { return announced_locked(announce_key); };
    if (rule.action == RuleAction::alert) {
        if (announced() == EpisodeState::alert)
            return;
        announced_[announce_key] = {EpisodeState::alert};
        auto event = action_event("alert", &rule, subject, &measures, Mechanism::event);
        if (auto reason = protection_->subject_reason(subject)) {
            event.protected_by(&*reason);
        }
        lock.unlock();
        options_.emit(event.build());
        return;
    }
    // An operator's throttle from top never shields a subject from the
    // policy: a rule that throttles or kills it takes over (the operator's
    // throttle is released first, its event says by which rule), else a
    // throttle at 1 TiB/s would exempt a runaway from every rule.
    if (auto it = throttles_.find(key);
        it != throttles_.end() && it->second->rule == kRequestedRuleName && !rule.requested) {
        release_locked(it, "superseded by rule " + rule.name);
    }
    if (throttles_.count(key) || kills_.count(key)) {
        note_kill_progress_locked(key, measures);
        return;  // already acting on it (a throttle holds until throttle_for ends)
    }
    if (subject.scope == RuleScope::process && subject.exited)
        return;  // nothing to act on
    // Released by an operator for a while (release --for): said once per episode.
    if (auto snooze = snoozes_.active(subject, now_s)) {
        if (std::exchange(announced_[announce_key], {EpisodeState::snoozed}).state == EpisodeState::snoozed)
            return;
        auto event = action_event(std::string(to_string(rule.action)), &rule, subject, &measures, Mechanism::none);
        event.snoozed_until(snooze->until_rfc3339);
        lock.unlock();
        options_.emit(event.build());
        return;
    }
    if (announced() == EpisodeState::snoozed)
        announced_.erase(announce_key);  // the snooze is over: acted on as the rule says
    if (rule.action == RuleAction::kill && announced() == EpisodeState::kill)
        return;  // killed once this episode; the rule ends when its writes stop
    if (announced() == EpisodeState::failed || announced() == EpisodeState::kill_limited)
        return;  // said once (agent.warning, or an alert past safety.kill_limit); retried in the rule's next episode
    if (announced() == EpisodeState::spared) {
        if (!measures.held_now)
            return;  // spared by the re-check before SIGKILL: acted on again only if it holds anew
        announced_.erase(announce_key);
    }
    // Protection is decided once per episode of the rule (reading /proc for a
    // cgroup's members at every evaluation would cost more than it tells).
    if (announced() == EpisodeState::protected_)
        return;
    if (auto reason = omit_reason(rule, subject)) {
        announced_[announce_key] = {EpisodeState::protected_};  // decided once per episode, as protection is
        auto event = action_event(std::string(to_string(rule.action)), &rule, subject, &measures, Mechanism::none);
        event.omitted(*reason);
        lock.unlock();
        options_.emit(event.build());
        return;
    }
    if (auto reason = protection_->subject_reason(subject)) {
        announced_[announce_key] = {EpisodeState::protected_};
        auto event = action_event(std::string(to_string(rule.action)), &rule, subject, &measures, Mechanism::none);
        event.protected_by(&*reason);
        lock.unlock();
        options_.emit(event.build());
        return;
    }
    if (dry_run_) {
        const Episode state = Episode::dry_run(rule.action);
        if (auto it = announced_.find(announce_key); it != announced_.end() && it->second == state)
            return;
        announced_[announce_key] = state;
        // The very choice the real path makes (start_kill, start_throttle).
        // A throttle the real path could not start (no kernel throttle, and no
        // io.max it could use) is said as the real path says it: the same
        // agent.warning, once per episode, and no action event claiming a
        // mechanism that would not be used. (The real path's other failures,
        // a pid taken by a later process or a state file that cannot be
        // written, are not tried: dry run touches nothing.)
        Mechanism mechanism;
        if (rule.action == RuleAction::kill) {
            mechanism = choose_kill_mechanism(subject, cgroup_offers(subject));
        } else {
            const auto choice =
                choose_throttle_mechanism(subject, cgroup_offers(subject), options_.kernel != nullptr);
            if (!choice.mechanism) {
                lock.unlock();
                action_failed(rule, subject, choice.cannot);
                return;
            }
            mechanism = *choice.mechanism;
        }
        auto event = action_event(std::string(to_string(rule.action)), &rule, subject, &measures, mechanism);
        if (rule.throttle_to_bps) {
            event.throttle(*rule.throttle_to_bps, rule.throttle_for_s);
        }
        if (rule.action == RuleAction::kill)
            event.kill_grace(rule.kill_grace_s);
        lock.unlock();
        options_.emit(event.build());
        return;
    }
    // safety.action_delay: this target waits; every other target has its own clock.
    pacer_.prune(now_s, safety_.action_delay_s);
    if (!pacer_.ready(key, now_s, safety_.action_delay_s))
        return;
    lock.unlock();
    if (rule.action == RuleAction::kill)
        start_kill(rule, subject, measures, now_s);
    else
        start_throttle(rule, subject, measures, now_s);
}

void Enforcer::action_failed(const PolicyRule &rule, const Subject &subject, const std::string &error)
{
    spdlog::warn("rule {}: cannot {} {}: {}", rule.name, to_string(rule.action), subject.key(), error);
    auto event = action_failed_event(options_.host,
                                     std::string("cannot ") + std::string(to_string(rule.action)) + ": " + error,
                                     rule.name, subject);
    std::lock_guard lock(mutex_);
    announced_[subject.key() + "|" + rule.name] = {EpisodeState::failed};
    options_.emit(event);
}

void Enforcer::start_throttle(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures,
                              double now_s)
{
    auto throttle = std::make_unique<Throttle>();
    throttle->key = subject.key();
    throttle->rule = rule.name;
    throttle->subject = subject;
    throttle->rate_bps = std::min(*rule.throttle_to_bps, kMaxKernelRateBps);
    throttle->since_s = now_s;
    throttle->until_s = now_s + rule.throttle_for_s;
    throttle->last_look_s = now_s;
    throttle->window_start_s = now_s;
    if (rule.escalate_after_s)
        throttle->escalate = std::make_shared<const PolicyRule>(rule);
    std::string error;
    if (subject.scope == RuleScope::process) {
        auto pidfd = open_subject(rule, subject);
        if (!pidfd)
            return;  // said (action_failed)
        if (pidfd->exited())
            return;  // gone (a zombie, killed by another rule): nothing to throttle, nothing to say
        throttle->start_boot_s = subject.start_boot_s;
        throttle->pidfd = std::move(*pidfd);
        throttle->kernel_scope = RuleScope::process;
        throttle->kernel_id = subject.pid;
    } else {
        throttle->cgroup_path = cgroup_dir(subject.cgroup);
        throttle->kernel_scope = RuleScope::cgroup;
        throttle->kernel_id = subject.cgroup_id;
    }
    // The one choice (dry run makes it too).
    const auto choice = choose_throttle_mechanism(subject, cgroup_offers(subject), options_.kernel != nullptr);
    if (!choice.mechanism) {
        action_failed(rule, subject, choice.cannot);
        return;
    }
    throttle->mechanism = *choice.mechanism;
    if (throttle->mechanism == Mechanism::io_max)
        throttle->io_dev = subject.dev;
    // Recorded before it is applied: a throttle that a crash could leave
    // behind with no record for the guard or the next agent is never started.
    const std::string key = throttle->key;
    // One hold of the lock from the record to the apply: a release from the
    // control socket must not find (and free) a throttle half started.
    Throttle *started = throttle.get();
    std::unique_lock lock(mutex_);
    throttles_[key] = std::move(throttle);
    if (!save_state_locked()) {
        throttles_.erase(key);
        save_state_locked();
        lock.unlock();
        action_failed(rule, subject,
                      "it cannot be recorded in the state file (" + held_state_path(options_.state_dir) +
                          "): a crash of the agent would leave it stopped, so it is not throttled");
        return;
    }
    bool applied;
    if (started->mechanism == Mechanism::io_max) {
        applied = write_control(started->cgroup_path + "/io.max",
                                started->io_dev + " wbps=" + std::to_string(static_cast<uint64_t>(started->rate_bps)),
                                &error);
    } else {
        // Held in the kernel: from now on the writer's own hook stops it at
        // the write that overdraws its allowance.
        options_.kernel->beat();
        applied = options_.kernel->start(started->kernel_scope, started->kernel_id, started->rate_bps,
                                         kernel_burst_bytes(started->rate_bps), started->start_boot_s, &error);
    }
    if (!applied) {
        throttles_.erase(key);
        save_state_locked();
        lock.unlock();
        action_failed(rule, subject, error);
        return;
    }
    auto event = action_event("throttle", &rule, subject, &measures, started->mechanism);
    event.throttle(started->rate_bps, rule.throttle_for_s);
    announced_[key + "|" + rule.name] = {EpisodeState::throttle};
    pacer_.acted(key, now_s);
    continuer_wake_.notify_all();
    options_.emit(event.build());
}

void Enforcer::release_locked(std::map<std::string, std::unique_ptr<Throttle>>::iterator it,
                              const std::string &reason, const nlohmann::json &extra)
{
    Throttle &throttle = *it->second;
    std::string error;
    if (throttle.mechanism == Mechanism::sigstop) {
        // No more stops first, then every writer it stopped is continued.
        if (options_.kernel) {
            options_.kernel->end(throttle.kernel_scope, throttle.kernel_id);
            for (const auto &stop : options_.kernel->stopped())
                if (stop.scope == throttle.kernel_scope && stop.id == throttle.kernel_id)
                    continue_stopped_locked(stop, &throttle);
            sweep_until_s_ = steady_now_s() + 0.5;
            continuer_wake_.notify_all();
        }
        if (throttle.pidfd && !throttle.pidfd->exited())
            throttle.pidfd->signal(SIGCONT, &error);
    } else if (throttle.mechanism == Mechanism::io_max) {
        write_control(throttle.cgroup_path + "/io.max", throttle.io_dev + " wbps=max", &error);
    }
    auto event = action_event("release", nullptr, throttle.subject, nullptr, throttle.mechanism);
    event.rule(throttle.rule);
    event.reason(reason);
    event.dry_run(false);
    event.merge(extra);
    if (throttle.mechanism == Mechanism::sigstop) {
        event.sigstop_counts(throttle.stops, throttle.defied);
    }
    announced_.erase(throttle.key + "|" + throttle.rule);
    throttles_.erase(it);
    save_state_locked();
    options_.emit(event.build());
}

void Enforcer::tick(double now_s)
{
    struct Escalation {
        std::shared_ptr<const PolicyRule> rule;
        Subject subject;
        nlohmann::json detail;
    };
    std::vector<Escalation> escalations;
    std::unique_lock lock(mutex_);
    for (auto it = throttles_.begin(); it != throttles_.end();) {
        auto next = std::next(it);
        Throttle &throttle = *it->second;
        if (throttle.pidfd && throttle.pidfd->exited())
            release_locked(it, "exited");
        else if (now_s >= throttle.until_s)
            release_locked(it, "throttle_for ended");
        else if (throttle.escalate && now_s >= throttle.window_start_s + *throttle.escalate->escalate_after_s) {
            // Judged window by window: a writer that gives up its flood is left throttled.
            const auto verdict = escalation_due(throttle.stopped_s - throttle.stopped_at_window_start_s,
                                                now_s - throttle.window_start_s, throttle.rate_bps,
                                                throttle.escalate->when.lowest(Condition::Kind::write_rate));
            throttle.window_start_s = now_s;
            throttle.stopped_at_window_start_s = throttle.stopped_s;
            if (verdict.kill)
                escalations.push_back({throttle.escalate, throttle.subject,
                                       {{"escalated", true}, {"stopped_fraction", verdict.stopped_fraction},
                                        {"reason", verdict.why}}});
        }
        it = next;
    }
    tick_kills_locked(now_s);
    lock.unlock();
    for (const auto &escalation : escalations) {
        RuleMeasures measures;
        measures.condition = "escalate_after";
        measures.cumulative_bytes = -1;  // its rule may have ended under the throttle: no numbers for the re-check
        start_kill(*escalation.rule, escalation.subject, measures, now_s, escalation.detail);
    }
}

bool Enforcer::needs_ticks() const
{
    std::lock_guard lock(mutex_);
    return !throttles_.empty() || !kills_.empty();
}

bool Enforcer::release(const std::string &target, const std::string &reason, std::string *error, double snooze_s,
                       const nlohmann::json &requested)
{
    std::lock_guard lock(mutex_);
    for (auto it = throttles_.begin(); it != throttles_.end(); ++it) {
        const Subject &subject = it->second->subject;
        const bool match = subject.scope == RuleScope::process ? target == std::to_string(subject.pid)
                                                               : target == subject.cgroup || target == it->second->cgroup_path;
        if (match) {
            nlohmann::json extra = requested.is_object() ? requested : nlohmann::json::object();
            if (snooze_s > 0) {
                snoozes_.add(subject, steady_now_s(), snooze_s);
                extra["snooze_s"] = snooze_s;
                extra["snoozed_until"] = snoozes_.active(subject, steady_now_s())->until_rfc3339;
            }
            release_locked(it, reason, extra);
            return true;
        }
    }
    // Nothing throttled, but snoozed (released with --for): the snooze is
    // lifted, so that rules, and the operator's own requests, act again.
    if (snoozes_.lift(target)) {
        Subject subject;
        const bool pid = !target.empty() && target.find_first_not_of("0123456789") == std::string::npos;
        subject.scope = pid ? RuleScope::process : RuleScope::cgroup;
        if (pid)
            subject.pid = static_cast<uint32_t>(std::stoul(target.substr(0, 10)));
        else
            subject.cgroup = target;
        auto event = action_event("release", nullptr, subject, nullptr, Mechanism::none);
        event.reason("snooze lifted");
        event.dry_run(false);
        event.merge(requested.is_object() ? requested : nlohmann::json::object());
        options_.emit(event.build());
        return true;
    }
    *error = "nothing throttled matches " + cut_for_message(target);
    return false;
}

bool Enforcer::act_on_request(const PolicyRule &rule, const Subject &subject, const RuleMeasures &measures,
                              double now_s, std::string *outcome)
{
    const std::string key = subject.key();
    // What the operator sees and typed: a pid, or a cgroup's path (the key has its id).
    const std::string named = subject.scope == RuleScope::process ? "process:" + std::to_string(subject.pid)
                                                                  : "cgroup:" + subject.cgroup;
    {
        std::lock_guard lock(mutex_);
        if (kills_.count(key)) {
            *outcome = named + " is being killed already";
            return false;
        }
        if (throttles_.count(key)) {
            *outcome = named + " is throttled already (release it first)";
            return false;
        }
    }
    if (rule.action == RuleAction::kill && subject.scope == RuleScope::cgroup &&
        cgroup_processes(cgroup_dir(subject.cgroup)).empty()) {
        *outcome = "no process is left in cgroup " + subject.cgroup;
        return false;
    }
    // Each request is an episode of its own: a second request after a
    // release acts again, as a rule's next episode would.
    rule_ended(rule, subject);
    enforce(rule, subject, measures, now_s);
    if (is_acting_on(key)) {
        *outcome = std::string(rule.action == RuleAction::kill ? "killing " : "throttled ") + named;
        return true;
    }
    bool dry_run = false;
    std::optional<Snoozes::Snooze> snooze;
    {
        std::lock_guard lock(mutex_);
        dry_run = dry_run_;
        snooze = snoozes_.active(subject, now_s);
    }
    if (dry_run)
        *outcome = "dry run: not acted on (the action event says what would be done)";
    else if (auto reason = protection_->subject_reason(subject))
        *outcome = "not acted on: protected (" + *reason + ")";
    else if (snooze)
        *outcome = "not acted on: released with a snooze until " + snooze->until_rfc3339;
    else
        *outcome = "not acted on now (safety.action_delay or safety.kill_limit, or it failed: the agent's events say)";
    return false;
}

void Enforcer::protect_on_request(const Subject &subject, const PolicyRule::Requester &requester)
{
    protection_->protect_until_restart(subject, "protected from " + requester.by + " by uid " +
                                                    std::to_string(requester.uid) + " until the agent restarts");
    PolicyRule rule;
    rule.name = kRequestedRuleName;
    rule.scope = subject.scope;
    rule.requested = requester;
    auto event = action_event("protect", &rule, subject, nullptr, Mechanism::none);
    event.protected_by(nullptr);
    options_.emit(event.build());
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

std::vector<Snoozes::Snooze> Enforcer::snoozed(double now_s) const
{
    std::lock_guard lock(mutex_);
    return snoozes_.active_all(now_s);
}

std::vector<ActiveAction> Enforcer::active() const
{
    std::lock_guard lock(mutex_);
    std::vector<ActiveAction> actions;
    for (const auto &[key, throttle] : throttles_)
        actions.push_back({throttle->subject.scope == RuleScope::process ? "process:" + std::to_string(throttle->subject.pid)
                                                                         : "cgroup:" + throttle->subject.cgroup,
                           throttle->rule, "throttle", std::string(to_string(throttle->mechanism)), throttle->since_s,
                           throttle->until_s, throttle->paused, throttle->stops, throttle->defied});
    for (const auto &[key, kill] : kills_)
        actions.push_back({kill->subject.scope == RuleScope::process ? "process:" + std::to_string(kill->subject.pid)
                                                                     : "cgroup:" + kill->subject.cgroup,
                           kill->rule, "kill", std::string(to_string(kill->mechanism)), kill->deadline_s,
                           kill->give_up_s, false, 0, 0});
    return actions;
}

// The continuer: the kernel stops a throttled writer at the write that
// overdraws its allowance (bpf/throttle.bpf.h); this thread continues it when
// the allowance is back, which the kernel's numbers tell to the nanosecond. It
// sleeps until the earliest such moment, a stop record (kernel_stopped()), or
// its poll; with nothing throttled it sleeps until a throttle starts.
void Enforcer::continuer_loop()
{
    for (;;) {
        if (catch_at_boundary("throttle continuer", [this] { continuer_serve(); }))
            return;
        std::this_thread::sleep_for(std::chrono::duration<double>(options_.continuer_poll_s));
    }
}

void Enforcer::continuer_serve()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        const auto has_work = [this] {
            if (stopping_ || kernel_stopped_ || steady_now_s() < sweep_until_s_)
                return true;
            for (const auto &[key, throttle] : throttles_)
                if (throttle->mechanism == Mechanism::sigstop)
                    return true;
            return false;
        };
        continuer_wake_.wait(lock, has_work);
        if (stopping_)
            return;
        kernel_stopped_ = false;
        if (options_.kernel)
            options_.kernel->beat();
        const double now = steady_now_s();
        const double next = options_.kernel ? continue_due_locked(now) : now + options_.continuer_poll_s;
        continuer_wake_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, next - steady_now_s())),
                                 [this] { return stopping_ || kernel_stopped_; });
        if (stopping_)
            return;
    }
}

Enforcer::Throttle *Enforcer::kernel_throttle_locked(RuleScope scope, uint64_t id)
{
    for (auto &[key, throttle] : throttles_)
        if (throttle->mechanism == Mechanism::sigstop && throttle->kernel_scope == scope &&
            throttle->kernel_id == id)
            return throttle.get();
    return nullptr;
}

double Enforcer::continue_due_locked(double now_s)
{
    double next = now_s + options_.continuer_poll_s;
    for (auto &[key, throttle] : throttles_) {
        if (throttle->paused)
            throttle->stopped_s += now_s - throttle->last_look_s;  // stopped since the last look
        throttle->last_look_s = now_s;
        throttle->paused = false;
    }
    bool members_changed = false;
    for (const auto &stop : options_.kernel->stopped()) {
        Throttle *throttle = kernel_throttle_locked(stop.scope, stop.id);
        if (throttle && throttle->kernel_scope == RuleScope::cgroup &&
            throttle->members_stopped.emplace(stop.pid, stop.start_boot_s).second)
            members_changed = true;
        if (throttle) {
            // A member of a throttled cgroup that is protected (it joined
            // after the throttle started, or exec'd): never stopped again.
            // Checked at each of its stops, not once: a process that joined by
            // writing cgroup.procs is stopped at that write, before it named
            // itself or exec'd.
            if (throttle->kernel_scope == RuleScope::cgroup) {
                const auto identity = read_process_identity(stop.pid);
                const auto reason = identity ? protection_->process_reason(stop.pid, identity->comm, identity->exe,
                                                                           throttle->subject.cgroup)
                                             : std::nullopt;
                if (reason) {
                    options_.kernel->exempt(stop.pid);
                    exempted_members_.insert(stop.pid);
                    spdlog::info("throttle {}: pid {} is protected ({}): exempt from its stops", throttle->key,
                                 stop.pid, *reason);
                    continue_stopped_locked(stop, throttle);
                    continue;
                }
            }
            const auto state = options_.kernel->state(stop.scope, stop.id);
            if (state) {
                throttle->stops = state->stops;
                throttle->defied = std::max(throttle->defied, state->defied);
                if (state->allowance_bytes < 0) {
                    // Owed: it waits until the refill pays the debt.
                    throttle->paused = true;
                    next = std::min(next, now_s + -state->allowance_bytes / throttle->rate_bps);
                    continue;
                }
            }
        }
        continue_stopped_locked(stop, throttle);
    }
    if (members_changed)
        save_state_locked();
    // A protected member that exited is exempt no longer: its pid may go to anyone.
    for (auto it = exempted_members_.begin(); it != exempted_members_.end();) {
        if (process_state(*it) != 0) {
            ++it;
            continue;
        }
        options_.kernel->unexempt(*it);
        it = exempted_members_.erase(it);
    }
    return next;
}

// Forget the stop, then continue: a stop that comes after the continue is
// recorded again. The process must be the one the kernel stopped (its start
// time), never a later one on the pid.
void Enforcer::continue_stopped_locked(const KernelStop &stop, Throttle *throttle)
{
    options_.kernel->forget(stop.pid);
    std::string error;
    if (throttle && throttle->pidfd && throttle->pidfd->pid() == stop.pid && !throttle->pidfd->exited() &&
        same_start(throttle->start_boot_s, stop.start_boot_s) && throttle->pidfd->signal(SIGCONT, &error))
        return;
    auto pidfd = Pidfd::open(stop.pid, "", stop.start_boot_s, &error);
    if (!pidfd || !pidfd->signal(SIGCONT, &error))
        spdlog::warn("continuing pid {} (stopped by a throttle): {}", stop.pid, error);  // gone, or a later process
}

void Enforcer::kernel_stopped()
{
    {
        std::lock_guard lock(mutex_);
        kernel_stopped_ = true;
    }
    continuer_wake_.notify_all();
}

void Enforcer::defied(pid_t pid, RuleScope scope, uint64_t id, pid_t sender_pid, uint32_t sender_uid,
                      const std::string &sender_comm, double now_s)
{
    std::unique_lock lock(mutex_);
    Throttle *throttle = kernel_throttle_locked(scope, id);
    if (!throttle)
        return;
    const auto state = options_.kernel ? options_.kernel->state(scope, id) : std::nullopt;
    // The kernel counts every SIGCONT; its records come at most every 100 ms
    // per writer. Without its count (a test), each record is one.
    throttle->defied = std::max(throttle->defied + (state ? 0 : 1), state ? state->defied : 0);
    if (now_s - throttle->defied_reported_s < 1.0)
        return;
    Subject subject = throttle->subject;
    if (subject.scope == RuleScope::cgroup || subject.pid != static_cast<uint32_t>(pid)) {
        subject.pid = static_cast<uint32_t>(pid);
        auto identity = read_process_identity(pid);
        subject.comm = identity ? identity->comm : "";
        subject.exe.clear();
    }
    auto event = throttle_defied_event(
        options_.host, throttle->rule, throttle->subject.scope, std::string(to_string(throttle->mechanism)), subject,
        DefiedSender {sender_pid, sender_uid, sender_comm}, throttle->defied - throttle->defied_reported,
        throttle->defied, state ? std::optional<double>(std::max(0.0, std::round(-state->allowance_bytes))) : std::nullopt);
    throttle->defied_reported = throttle->defied;
    throttle->defied_reported_s = now_s;
    lock.unlock();
    options_.emit(event);
}

// state.json (actions/held_state.h): what a crash would leave stopped or
// frozen. Written whenever a throttle starts or ends.
bool Enforcer::save_state_locked()
{
    HeldState state;
    state.agent_pid = options_.agent_pid;
    for (const auto &[key, throttle] : throttles_) {
        if (throttle->mechanism == Mechanism::sigstop && throttle->subject.scope == RuleScope::process)
            state.stopped.push_back({static_cast<pid_t>(throttle->subject.pid), throttle->start_boot_s,
                                     throttle->subject.comm});
        else if (throttle->mechanism == Mechanism::sigstop) {
            state.stopped_in.push_back(throttle->cgroup_path);
            // Its members stopped so far, wherever they are now (one moved to
            // another cgroup while stopped is no longer in stopped_in's).
            for (auto member = throttle->members_stopped.begin(); member != throttle->members_stopped.end();) {
                if (process_state(member->first) == 0) {  // gone
                    member = throttle->members_stopped.erase(member);
                    continue;
                }
                state.stopped.push_back({member->first, member->second, ""});
                ++member;
            }
        }
        else if (throttle->mechanism == Mechanism::io_max)
            state.io_max.push_back({throttle->cgroup_path, throttle->io_dev});
    }
    std::string error;
    const bool saved = save_held_state(options_.state_dir, state, &error);
    if (saved == !state_save_failing_)
        return saved;
    state_save_failing_ = !saved;
    if (saved)
        return true;
    // Said once per failing episode: until the file can be written, neither the
    // guard nor a restarted agent would know of a new throttle, so none starts.
    spdlog::warn("cannot write the state file: {}", error);
    auto event = warning_event(options_.host,
                               "cannot write the state file (" + error + "): no throttle starts until it can be written");
    options_.emit(event);
    return false;
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
        if (release.mechanism == Mechanism::io_max)
            detail = "a previous agent had limited it";
        else if (release.mechanism == Mechanism::cgroup_freeze)
            detail = "a previous agent had frozen it";
        options_.emit(release_event(options_.host, released_subject(release), to_string(release.mechanism),
                                    "reconcile: " + detail));
    }
    std::lock_guard lock(mutex_);
    save_state_locked();
    return released.size();
}

}  // namespace diskwatch
