#include "agent/agent.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>

#include <spdlog/spdlog.h>

#include "agent/state_dir_lock.h"
#include "kernel/privileges.h"
#include "diskwatch/version.h"
#include "events/events.h"
#include "vocabulary/internal_errors.h"
#include "vocabulary/json_names.h"
#include "resolve/mountinfo.h"
#include "rules/units.h"
#include "sinks/file_sink.h"
#include "sinks/stdout_sink.h"
#include "views/json_report.h"
#include "vocabulary/steady_clock.h"

namespace diskwatch {

namespace {

constexpr double kMinAlarmGapS = 0.02;  // evaluations woken by alarms: at most every 20 ms
// After an evaluation an alarm woke, one more this much later: a burst that
// ends between two alarms (they repeat every 25 ms per key) has its last
// bytes, which may be the ones that cross a budget, looked at then rather
// than at the next interval.
constexpr double kAlarmFollowUpS = 0.03;
constexpr double kNever = std::numeric_limits<double>::infinity();
constexpr double kEnforcerTickS = 0.05;  // while a kill or throttle is in progress
constexpr size_t kTopWriters = 5;
// When a `for` window is next covered; infinity: no subject is waiting.

// The enforcer's kernel throttles (actions/kernel_throttles.h), through the
// tracer that owns the maps.
class TracerThrottles final : public KernelThrottles {
public:
    explicit TracerThrottles(WriteTracer &tracer) : tracer_(tracer) {}

    bool start(RuleScope scope, uint64_t id, double rate_bps, double burst_bytes, double owner_start_boot_s,
               std::string *error) override
    {
        return tracer_.start_throttle(alarm_scope(scope), id, static_cast<uint64_t>(rate_bps),
                                      static_cast<uint64_t>(burst_bytes), owner_start_boot_s, error);
    }
    void end(RuleScope scope, uint64_t id) override { tracer_.end_throttle(alarm_scope(scope), id); }
    std::optional<KernelThrottleState> state(RuleScope scope, uint64_t id) const override
    {
        const auto numbers = tracer_.throttle_numbers(alarm_scope(scope), id);
        if (!numbers)
            return std::nullopt;
        return KernelThrottleState {numbers->allowance_bytes, numbers->stops, numbers->stop_failures, numbers->defied};
    }
    std::vector<KernelStop> stopped() const override
    {
        std::vector<KernelStop> stops;
        for (const auto &writer : tracer_.stopped_writers())
            stops.push_back({static_cast<pid_t>(writer.tgid), rule_scope(writer.scope), writer.id, writer.start_boot_s});
        return stops;
    }
    void forget(pid_t pid) override { tracer_.forget_stopped(static_cast<uint32_t>(pid)); }
    void exempt(pid_t pid) override { tracer_.exempt(static_cast<uint32_t>(pid)); }
    void unexempt(pid_t pid) override { tracer_.unexempt(static_cast<uint32_t>(pid)); }
    void beat() override { tracer_.beat_throttles(); }

    static RateAlarm::Scope alarm_scope(RuleScope scope)
    {
        return scope == RuleScope::process ? RateAlarm::Scope::process : RateAlarm::Scope::cgroup;
    }
    static RuleScope rule_scope(RateAlarm::Scope scope)
    {
        return scope == RateAlarm::Scope::process ? RuleScope::process : RuleScope::cgroup;
    }

private:
    WriteTracer &tracer_;
};

}  // namespace

Agent::Agent(AgentOptions options, Policy policy, std::unique_ptr<WriteMonitor> monitor,
             std::vector<std::unique_ptr<EventSink>> sinks)
    : options_(std::move(options)), policy_(std::move(policy)), monitor_(std::move(monitor)),
      sinks_(std::move(sinks)), host_(local_host_name())
{
    EnforcerOptions enforcer;
    enforcer.host = host_;
    const MountTable mounts = MountTable::load();
    if (const MountEntry *cgroup2 = mounts.find_cgroup2())
        enforcer.cgroup2_mount = cgroup2->mount_point;
    enforcer.state_dir = options_.state_dir;
    enforcer.agent_pid = ::getpid();
    enforcer.containers = monitor_->containers();
    kernel_throttles_ = std::make_unique<TracerThrottles>(monitor_->tracer());
    enforcer.kernel = kernel_throttles_.get();
    enforcer.emit = [this](const Event &event) { emit(event); };
    enforcer_ = std::make_unique<Enforcer>(std::move(enforcer));
    monitor_->tracer().set_rate_alarm_handler([this](const RateAlarm &) {
        alarm_pending_ = true;
        ++alarms_;
    });
    monitor_->tracer().set_throttle_event_handler([this](const ThrottleEvent &event) {
        if (event.kind == ThrottleEvent::Kind::stopped)
            enforcer_->kernel_stopped();
        else
            enforcer_->defied(static_cast<pid_t>(event.tgid), TracerThrottles::rule_scope(event.scope), event.id,
                              static_cast<pid_t>(event.sender_tgid), event.sender_uid, event.sender_comm,
                              steady_now_s());
    });
    InternalErrors::instance().set_reporter(
        [this](const std::string &thread, const std::string &what, uint64_t total, uint64_t unreported) {
            emit(thread_error_event(host_,
                                    "internal error in the " + thread + " (caught; the agent goes on): " +
                                        cut_for_message(what),
                                    thread, unreported + 1, total));
            spdlog::error("internal error in the {} (caught; the agent goes on): {}", thread, cut_for_message(what));
        });
}

Agent::~Agent()
{
    InternalErrors::instance().set_reporter(nullptr);
    monitor_->tracer().set_rate_alarm_handler(nullptr);
    monitor_->tracer().set_throttle_event_handler(nullptr);
    enforcer_.reset();
}

void Agent::emit(const Event &event)
{
    // The event was serialized once, when it was built (Event::line: printable
    // ASCII, names that are not UTF-8 with their exact bytes in `<key>_b64`);
    // every NDJSON sink shares that line.
    for (auto &sink : sinks_)
        sink->publish(event);
    std::lock_guard lock(recorder_mutex_);  // emit is called from other threads too
    if (recorder_)
        recorder_->note_event(event.line());
}

// Everything that follows from the policy: rules, mount alerts, protection,
// and the kernel's rate alarm thresholds (the lowest write_rate per scope).
void Agent::apply_policy()
{
    std::lock_guard lock(state_mutex_);
    engine_ = std::make_unique<RuleEngine>(policy_.rules);
    mount_watch_ = std::make_unique<MountWatch>(policy_.mounts);
    enforcer_->set_policy(policy_, options_.dry_run || policy_.dry_run);
    RateAlarmSettings alarms;
    for (const auto &rule : policy_.rules) {
        const bool process = rule.scope == RuleScope::process;
        bool &enabled = process ? alarms.process : alarms.cgroup;
        uint64_t &threshold = process ? alarms.process_threshold_bps : alarms.cgroup_threshold_bps;
        if (const auto lowest = rule.when.lowest(Condition::Kind::write_rate)) {
            const auto bps = static_cast<uint64_t>(*lowest);
            threshold = enabled && threshold ? std::min(threshold, bps) : bps;
            enabled = true;
        }
    }
    monitor_->tracer().set_rate_alarms(alarms);
}

void Agent::reload()
{
    service_.reloading();
    // However it ends (the new policy, or the old one kept), systemd hears
    // that the reload is over.
    struct Reloaded {
        Agent &agent;
        ~Reloaded()
        {
            // A destructor that throws while a reload's exception unwinds
            // would end the agent: the status line is not worth that.
            try {
                agent.service_.reloaded(agent.running_status());
            } catch (...) {
                agent.service_.reloaded("watching");
            }
        }
    } reloaded {*this};
    for (auto &sink : sinks_)
        sink->reopen();
    if (!options_.config_path) {
        const std::string note = "no --config: the built-in default policy stays";
        emit(policy_reload_event(host_, policy_, options_.dry_run || policy_.dry_run, nullptr, &note));
        return;
    }
    std::string error;
    auto fresh = load_policy_file(*options_.config_path, &error);
    if (!fresh) {
        // A bad new policy keeps the old one running.
        spdlog::error("reload refused, keeping the running policy: {}", error);
        emit(policy_reload_event(host_, policy_, options_.dry_run || policy_.dry_run, &error));
        return;
    }
    {
        std::lock_guard lock(state_mutex_);
        policy_ = std::move(*fresh);
    }
    apply_policy();
    emit(policy_reload_event(host_, policy_, options_.dry_run || policy_.dry_run));
    spdlog::info("policy reloaded from {}: {} rules", policy_.source, policy_.rules.size());
}

void Agent::check_drops(const DropCounters &drops, double now_s)
{
    // At most one warning per reason a minute, counting what was lost since
    // the last one: some reasons grow on every refresh under an ordinary load
    // (a database's io_getevents returning more than the BPF side reads), and
    // a warning each refresh would fill the disk the agent watches.
    for (size_t i = 0; i < std::size(kDropReasons); ++i) {
        const auto &reason = kDropReasons[i];
        if (!(reason.views & kDropViewWarning))
            continue;
        const uint64_t now = drops.*reason.counter, before = last_drops_.*reason.counter;
        if (now <= before || (drop_warned_s_[i] > 0 && now_s - drop_warned_s_[i] < kDropWarningGapS))
            continue;
        emit(drop_warning_event(host_, std::string(reason.help), now - before, now));
        last_drops_.*reason.counter = now;
        drop_warned_s_[i] = now_s;
    }
}

void Agent::emit_mount_alerts(const WriteReport &report)
{
    for (const auto &alert : mount_watch_->evaluate(report.mounts)) {
        const bool usage = alert.kind == MountAlert::Kind::usage;
        std::vector<MountTopWriter> writers;
        auto it = recent_rows_by_mount_.find(alert.mount.mount);
        if (it != recent_rows_by_mount_.end()) {
            for (const auto &row : it->second) {
                if (writers.size() >= kTopWriters)
                    break;
                double growth = 0;
                if (alert.mount.fill_bps && *alert.mount.fill_bps > 0 && alert.mount.write_bps > 0)
                    growth = *alert.mount.fill_bps * std::min(1.0, row.write_bps / alert.mount.write_bps);
                writers.push_back({row.pid, row.comm, row.cgroup, row.write_bps, growth});
            }
        }
        emit(mount_alert_event(host_, alert,
                               usage ? *policy_.mounts.usage_alert_percent : *policy_.mounts.eta_alert_s, writers));
    }
}

void Agent::record(const WriteReport &report)
{
    if (!recorder_)
        return;
    RecorderCapture capture;
    ReportOptions options {GroupBy::process, false};
    options.all_mounts = options_.all_mounts;
    // File names are only to be had while the files are open (/proc/PID/fd):
    // the top rows' are named at most once a second, off the kernel's path.
    const double now_s = steady_now_s();
    if (now_s - files_named_s_ >= 1.0) {
        options.rows_with_files = kRecordedRowsWithFiles;
        capture.process = monitor_->regroup_last(options);
        files_named_s_ = now_s;
    } else {
        capture.process = report;
    }
    options.rows_with_files = 0;
    options.by = GroupBy::cgroup;
    capture.cgroup = monitor_->regroup_last(options);
    options.by = GroupBy::mount;
    capture.mount = monitor_->regroup_last(options);
    recorder_->capture(std::move(capture));
}

void Agent::evaluate(double now_s)
{
    ReportOptions report_options {GroupBy::process, false};
    report_options.all_mounts = options_.all_mounts;
    const WriteReport report = monitor_->refresh(report_options);
    // What the recording throws is counted and said; this pass's rules and
    // actions still run.
    catch_at_boundary("flight recorder", [&] { record(report); });
    check_drops(report.drops, now_s);
    if (report_observer_)
        report_observer_(report);
    {
        std::lock_guard lock(report_mutex_);
        latest_report_ = report;
        latest_drops_ = report.drops;
    }
    build_cumulative_reports();
    // Top writers per mount: the latest interval that had any.
    std::map<std::string, std::vector<ReportRow>> rows_by_mount;
    for (const auto &row : report.rows)
        if (!row.mount.empty())
            rows_by_mount[row.mount].push_back(row);
    for (auto &[mount, rows] : rows_by_mount)
        recent_rows_by_mount_[mount] = std::move(rows);

    // protect.exe's files again (at most once a second): an in-place upgrade
    // is seen, and the replaced file stays protected (actions/protected_exes.h).
    enforcer_->protection().refresh(now_s);
    std::lock_guard lock(state_mutex_);
    std::vector<MountState> mounts;
    for (const auto &mount : report.mounts)
        mounts.push_back({mount.mount, mount.available_bytes, mount.write_bps, mount.fill_bps, mount.used_pct,
                          mount.eta_full_s});
    for (const auto &finding : engine_->evaluate(now_s, report.rows, mounts)) {
        const PolicyRule &rule = engine_->rules()[finding.rule_index];
        const bool started = finding.change == Finding::Change::started;
        if (!runaway_dedup_.changed(finding.subject.key(), rule.name, started ? "started" : "ended"))
            continue;
        const auto reason = enforcer_->protection().subject_reason(finding.subject);
        emit(runaway_event(host_, rule, finding.subject, finding.measures, started, reason.has_value(),
                           reason ? &*reason : nullptr));
        if (!started) {
            enforcer_->rule_ended(rule, finding.subject);
            runaway_dedup_.forget(finding.subject.key(), rule.name);  // bounded: only live episodes are kept
        }
    }
    // Level-triggered: every subject a rule holds for gets its action (the
    // enforcer does nothing twice, and re-applies a throttle that ended while
    // the rule still holds).
    // In the order a cgroup rule's prefer and avoid say (the kill limit may stop the last ones).
    std::vector<ActionCandidate> candidates;
    for (const auto &[rule_index, subject] : engine_->holding())
        candidates.push_back({rule_index, subject, engine_->measures(rule_index, subject.key()).value_or(RuleMeasures{})});
    order_for_action(candidates, engine_->rules());
    for (const auto &candidate : candidates)
        enforcer_->enforce(engine_->rules()[candidate.rule_index], candidate.subject, candidate.measures, now_s);
    emit_mount_alerts(report);
}

Policy Agent::policy() const
{
    std::lock_guard lock(state_mutex_);
    return policy_;
}

std::vector<Offender> Agent::offenders() const
{
    std::lock_guard lock(state_mutex_);
    std::vector<Offender> result;
    for (const auto &[rule_index, subject] : engine_->holding())
        result.push_back({engine_->rules()[rule_index].name, subject,
                          engine_->measures(rule_index, subject.key()).value_or(RuleMeasures{})});
    return result;
}

bool Agent::release(const std::string &target, std::string *error, double snooze_s)
{
    return enforcer_->release(target, "requested", error, snooze_s);
}

nlohmann::json Agent::status() const
{
    nlohmann::json status;
    status["version"] = DISKWATCH_VERSION;
    status["pid"] = ::getpid();
    status["hooks"] = to_string(monitor_->tracer().family());
    status["programs"] = monitor_->tracer().attached_programs();
    {
        std::lock_guard lock(state_mutex_);
        status["policy"] = policy_.source;
        status["dry_run"] = options_.dry_run || policy_.dry_run;
        status["interval_s"] = policy_.interval_s;
        status["rules"] = rules_summary(policy_);
    }
    auto offenders_json = nlohmann::json::array();
    for (const auto &offender : offenders()) {
        nlohmann::json entry = {{"rule", offender.rule},
                                {"process", process_json(offender.subject)},
                                {"cgroup", cgroup_json(offender.subject)},
                                {"write_bps", std::round(offender.measures.write_bps)}};
        offenders_json.push_back(entry);
    }
    status["offenders"] = offenders_json;
    auto actions_json = nlohmann::json::array();
    const double now_s = steady_now_s();
    for (const auto &action : actions())
        actions_json.push_back({{"target", action.target},
                                {"rule", action.rule},
                                {"action", action.action},
                                {"mechanism", action.mechanism},
                                {"for_s", std::round((now_s - action.since_s) * 10) / 10},
                                {"paused", action.paused},
                                {"stops", action.stops},
                                {"defied", action.defied}});
    status["actions"] = actions_json;
    auto snoozed_json = nlohmann::json::array();
    for (const auto &snooze : enforcer_->snoozed(now_s))
        snoozed_json.push_back({{"target", snooze.target},
                                {"until", snooze.until_rfc3339},
                                {"for_s", std::round((snooze.until_s - now_s) * 10) / 10}});
    status["snoozed"] = snoozed_json;
    status["internal_errors"] = InternalErrors::instance().counts();
    std::optional<RecorderStatus> recording;
    {
        std::lock_guard lock(recorder_mutex_);
        if (recorder_)
            recording = recorder_->status();
    }
    if (recording) {
        const RecorderStatus &recorder = *recording;
        status["recorder"] = {{"dir", recorder.dir},
                              {"recording", recorder.recording},
                              {"problem", recorder.problem},
                              {"records", recorder.records},
                              {"dropped_refreshes", recorder.dropped_captures},
                              {"write_errors", recorder.write_errors},
                              {"reserved", recorder.reservation.reserved},
                              {"filesystem", recorder.reservation.filesystem},
                              {"caveat", recorder.reservation.caveat}};
    } else {
        status["recorder"] = nullptr;
    }
    status["guard_pid"] = guard_ && guard_->pid() > 0 ? nlohmann::json(guard_->pid()) : nlohmann::json();
    std::lock_guard lock(report_mutex_);
    status["drops"] = drops_json(latest_drops_);
    return status;
}

nlohmann::json Agent::latest_report() const
{
    std::lock_guard lock(report_mutex_);
    if (!latest_report_)
        return nlohmann::json();
    return to_json(*latest_report_);
}

void Agent::build_cumulative_reports()
{
    // Only the groupings asked for since the last refresh: with thousands of
    // finished writers kept for their totals, a grouping is not free, and an
    // agent nobody attaches to builds none.
    std::array<bool, 3> requested {};
    {
        std::lock_guard lock(report_mutex_);
        requested = snapshot_requested_;
        snapshot_requested_ = {};
    }
    std::array<std::optional<WriteReport>, 3> built;
    for (GroupBy by : {GroupBy::process, GroupBy::cgroup, GroupBy::mount})
        if (requested[static_cast<size_t>(by)])
            built[static_cast<size_t>(by)] = monitor_->regroup_last({by, true});
    {
        std::lock_guard lock(report_mutex_);
        ++refresh_generation_;
        for (size_t i = 0; i < built.size(); ++i) {
            if (!built[i])
                continue;
            cumulative_[i] = std::move(built[i]);
            cumulative_generation_[i] = refresh_generation_;
        }
    }
    cumulative_ready_.notify_all();
}

WriteReport Agent::cumulative_report(GroupBy by, std::chrono::milliseconds wait, double *interval_s)
{
    {
        std::lock_guard lock(state_mutex_);
        *interval_s = policy_.interval_s;
    }
    wait = std::max(wait, std::chrono::milliseconds(static_cast<long long>(*interval_s * 2000)));
    std::unique_lock lock(report_mutex_);
    const auto index = static_cast<size_t>(by);
    const uint64_t asked_at = refresh_generation_;
    snapshot_requested_[index] = true;
    // Served from the refresh after the request: fresh, and exactly one build per request.
    if (!cumulative_ready_.wait_for(lock, wait, [&] { return cumulative_generation_[index] > asked_at; }))
        throw control::ControlError("snapshot: the agent did not refresh its counters in time; ask again");
    return *cumulative_[index];
}

nlohmann::json Agent::snapshot(GroupBy by, std::chrono::milliseconds wait)
{
    double interval_s = 1;
    const WriteReport report = cumulative_report(by, wait, &interval_s);
    nlohmann::json response;
    response["report"] = to_json(report);
    response["ts_unix"] = report.ts;
    response["interval_s"] = interval_s;
    response["pid"] = ::getpid();
    response["hooks"] = to_string(monitor_->tracer().family());
    response["programs"] = monitor_->tracer().attached_programs().size();
    // Who the agent acts on, for top to mark their rows.
    auto acted_on = nlohmann::json::array();
    for (const auto &action : actions())
        acted_on.push_back({{"target", action.target}, {"rule", action.rule}, {"action", action.action},
                            {"paused", action.paused}});
    for (const auto &offender : offenders())
        acted_on.push_back({{"target", offender.subject.scope == RuleScope::process
                                           ? "process:" + std::to_string(offender.subject.pid)
                                           : "cgroup:" + offender.subject.cgroup},
                            {"rule", offender.rule},
                            {"action", "offender"}});
    response["acted_on"] = acted_on;
    return response;
}

void Agent::loop_pass(double &next_s, double &last_eval_s)
{
    const double now_s = steady_now_s();
    if (guard_)
        watch_guard(now_s);  // the heartbeat is the end of each pass (and arm() before the first)
    double wake_s = std::min(next_s, follow_up_s_);
    if (const auto watchdog_sleep = service_.max_sleep_s())
        wake_s = std::min(wake_s, now_s + *watchdog_sleep);
    if (alarm_pending_)
        wake_s = std::min(wake_s, last_eval_s + kMinAlarmGapS);
    // While it holds anything, the enforcer's ticks (every 50 ms) are also the
    // guard's heartbeat; holding nothing, a hang leaves nothing stopped, and
    // the guard does not look at the heartbeat (agent/guard.h).
    if (enforcer_->needs_ticks())
        wake_s = std::min(wake_s, now_s + kEnforcerTickS);
    // Rounded up: waking a millisecond early would only loop again.
    const int timeout_ms = static_cast<int>(std::clamp(std::ceil((wake_s - now_s) * 1000), 0.0, 3600e3));
    monitor_->pump_events(timeout_ms);
    if (stop_requested_)
        return;
    if (reload_requested_.exchange(false))
        reload();
    const double after_s = steady_now_s();
    const bool due = after_s >= next_s;
    const bool alarmed = alarm_pending_ && after_s - last_eval_s >= kMinAlarmGapS;
    if (due || alarmed || after_s >= follow_up_s_) {
        alarm_pending_ = false;
        follow_up_s_ = alarmed ? after_s + kAlarmFollowUpS : kNever;
        if (due) {
            next_s += policy_.interval_s;
            if (next_s < after_s)
                next_s = after_s + policy_.interval_s;
        }
        last_eval_s = after_s;
        evaluate(after_s);
    }
    enforcer_->tick(steady_now_s());
    if (guard_)
        guard_->beat(enforcer_->needs_ticks());  // with what it holds now, a throttle started in this pass included
}

void Agent::exempt_guard()
{
    if (guard_ && guard_->pid() > 0)
        kernel_throttles_->exempt(guard_->pid());
}

// A guard that exited (killed by someone, or it crashed) is started again,
// and said: until then a crash of the agent would leave its throttles to the
// next agent's reconcile.
void Agent::watch_guard(double now_s)
{
    if (guard_->alive() || now_s < guard_restart_s_ + 10)
        return;
    guard_restart_s_ = now_s;
    std::string error;
    const pid_t old_guard = guard_->pid();
    const bool restarted = guard_->restart(&error);
    if (old_guard > 0)
        kernel_throttles_->unexempt(old_guard);  // gone: its pid may go to anyone
    emit(warning_event(host_, restarted ? "the guard process exited; started a new one (pid " +
                                              std::to_string(guard_->pid()) + ")"
                                        : "the guard process exited and cannot be started again (" + error +
                                              "): a crash of the agent would leave its throttles until it restarts"));
    if (restarted) {
        guard_->arm();
        exempt_guard();
    }
}

std::string Agent::running_status() const
{
    std::lock_guard lock(state_mutex_);
    return "watching with " + std::string(to_string(monitor_->tracer().family())) + " hooks; policy " + policy_.source +
           " (" + std::to_string(policy_.rules.size()) + " rules" +
           (options_.dry_run || policy_.dry_run ? ", dry run)" : ")");
}

void Agent::start_recorder()
{
    RecorderSettings settings = policy_.recorder;
    if (options_.recorder == "off")
        settings.enabled = false;
    else if (!options_.recorder.empty())
        settings.path = options_.recorder;
    if (!settings.enabled)
        return;
    // Its warnings come from its own thread; the sinks take events from any.
    // Not through emit(): that would hand the warning back to the recorder.
    auto recorder = std::make_unique<FlightRecorder>(settings, DISKWATCH_VERSION, [this](const std::string &warning) {
        spdlog::warn("{}", warning);
        const Event event = warning_event(host_, warning);
        for (auto &sink : sinks_)
            sink->publish(event);
    });
    std::lock_guard lock(recorder_mutex_);
    recorder_ = std::move(recorder);
    spdlog::info("recording into {}", recorder_dir(settings));
}

int Agent::run()
{
    if (stop_requested_)
        return kExitOk;  // asked to stop before it started: nothing to release, no agent.start to answer
    const size_t reconciled = enforcer_->reconcile();
    apply_policy();
    emit(agent_start_event(host_, DISKWATCH_VERSION, ::getpid(), to_string(monitor_->tracer().family()),
                           monitor_->tracer().attached_programs(), policy_, options_.dry_run || policy_.dry_run,
                           reconciled));
    start_recorder();
    spdlog::info("agent running: policy {} ({} rules), every {}s{}", policy_.source, policy_.rules.size(),
                 policy_.interval_s, options_.dry_run || policy_.dry_run ? ", dry run" : "");
    service_.ready(running_status());

    // The loop sleeps until the first of: the next periodic evaluation; the
    // moment a `for` window is first covered for a subject writing now (so
    // the action comes then, not up to an interval later); an alarm's
    // evaluation (at most every kMinAlarmGapS); the enforcer's next tick
    // while it has work (each pass is also the guard's heartbeat). Rate
    // alarms, stop and reload requests end the sleep early. An idle agent
    // wakes only for its periodic evaluations.
    double next_s = steady_now_s() + policy_.interval_s;
    double last_eval_s = 0;
    if (guard_)
        guard_->arm();
    while (!stop_requested_) {
        // What one pass throws (a name the kernel handed us that breaks a
        // parser, an allocation) is counted and reported; the next pass runs.
        if (catch_at_boundary("agent loop", [&] { loop_pass(next_s, last_eval_s); }))
            service_.alive(steady_now_s());  // only a pass that worked feeds systemd's watchdog
        else
            monitor_->pump_events(static_cast<int>(kEnforcerTickS * 1000));  // no hot loop on a repeating error
    }
    service_.stopping();
    enforcer_->release_all("agent stop");
    {
        std::unique_ptr<FlightRecorder> recorder;
        {
            std::lock_guard lock(recorder_mutex_);
            recorder = std::move(recorder_);
        }
        // Its open windows written, before agent.stop; a disk that holds
        // it (frozen, a dead server) does not hold the agent's exit.
        if (recorder && !recorder->stop(std::chrono::seconds(5))) {
            spdlog::warn("recorder: its disk did not answer within 5 s; its last windows are lost");
            (void)recorder.release();  // its thread may still be writing: the process is ending
        }
    }
    uint64_t dropped = 0;
    for (const auto &sink : sinks_)
        dropped += sink->stats().dropped;
    emit(agent_stop_event(host_, alarms_, dropped));
    for (auto &sink : sinks_)
        sink->flush(2000);
    spdlog::info("agent stopped");
    return kExitOk;
}

namespace {

// Signals may come at any moment, start-up included (systemd stops a unit
// whose start takes too long; an operator presses Ctrl-C while the programs
// load). The handler only sets flags and wakes the loop (async-signal-safe);
// start-up checks g_stop between its steps, so a stop there is a clean exit:
// what was attached is detached by the destructors, and no agent.start is sent.
std::atomic<bool> g_stop {false};
std::atomic<Agent *> g_agent {nullptr};

void on_signal(int signo)
{
    Agent *agent = g_agent.load();
    if (signo == SIGHUP) {
        if (agent)
            agent->request_reload();
        return;  // before the loop runs, the policy just loaded is the file's
    }
    g_stop = true;
    if (agent)
        agent->request_stop();
}

}  // namespace

void install_agent_signal_handlers()
{
    struct sigaction action {};
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGHUP, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

void restore_default_signal_handlers()
{
    for (int signo : {SIGINT, SIGTERM, SIGHUP})
        signal(signo, SIG_DFL);
    if (g_stop)
        ::raise(SIGTERM);  // what came before the command was known ends it as it would have
}

namespace {

int stopped_during_start_up()
{
    spdlog::info("stop requested during start-up: exiting before the agent started");
    return kExitOk;
}

int run_agent_started(const AgentCommand &command);

}  // namespace

int run_agent(const AgentCommand &command)
{
    install_agent_signal_handlers();  // again: main() may not have (a library caller)
    // What escapes every thread's own boundary is fatal: the Agent's
    // destructor (stack unwinding) has released every throttle by the time
    // this catch runs, and the guard covers an abort.
    try {
        return run_agent_started(command);
    } catch (const std::exception &e) {
        std::cerr << "ebpf-diskwatch agent: fatal: " << cut_for_message(e.what(), 400)
                  << " (every throttle was released)\n";
    }
    return kExitFailure;
}

namespace {

int run_agent_started(const AgentCommand &command)
{
    Policy policy = default_policy();
    if (command.agent.config_path) {
        std::string error;
        auto loaded = load_policy_file(*command.agent.config_path, &error);
        if (!loaded) {
            std::cerr << "ebpf-diskwatch agent: " << error << "\n";
            return kExitFailure;
        }
        policy = std::move(*loaded);
    }
    if (auto missing = missing_bpf_privileges(); !missing.empty()) {
        std::cerr << "ebpf-diskwatch agent: " << missing << "\n";
        return kExitCannotRunHere;
    }
    if (!command.json_max_size.empty() && (command.json_out.empty() || command.json_out == "-")) {
        std::cerr << "ebpf-diskwatch agent: --json-max-size needs --json-out FILE (stdout is not rotated)\n";
        return kExitUsage;
    }
    FileSinkOptions file_options {command.json_out};
    file_options.keep = command.json_keep;
    if (!command.json_max_size.empty()) {
        std::string error;
        auto size = parse_size(command.json_max_size, &error);
        if (!size || *size < 1024) {
            std::cerr << "ebpf-diskwatch agent: --json-max-size " << cut_for_message(command.json_max_size, 80)
                      << ": " << (size ? std::string("at least 1KiB, so that a file holds whole events") : error)
                      << "\n";
            return kExitUsage;
        }
        file_options.max_size_bytes = *size;
    }
    if (command.agent.state_dir.empty() || command.agent.state_dir[0] != '/') {
        std::cerr << "ebpf-diskwatch agent: --state-dir must be an absolute path, got \""
                  << cut_for_message(command.agent.state_dir, 80) << "\"\n";
        return kExitUsage;
    }
    // One agent per state dir, before anything reads or writes its state.
    std::string error;
    auto lock = StateDirLock::acquire(command.agent.state_dir, &error);
    if (!lock) {
        std::cerr << "ebpf-diskwatch agent: " << error << "\n";
        return kExitFailure;
    }
    std::vector<std::unique_ptr<EventSink>> sinks;
    if (command.json_out.empty() || command.json_out == "-") {
        sinks.push_back(std::make_unique<StdoutSink>());
    } else {
        auto sink = FileSink::open(file_options, &error);
        if (!sink) {
            std::cerr << "ebpf-diskwatch agent: --json-out " << error << "\n";
            return kExitFailure;
        }
        sinks.push_back(std::move(sink));
    }
    // The guard (agent/guard.h) starts before anything can be stopped, and
    // holds no BPF program: fork + exec leaves it none of our descriptors.
    std::string cgroup2_mount;
    const MountTable mounts = MountTable::load();
    if (const MountEntry *cgroup2 = mounts.find_cgroup2())
        cgroup2_mount = cgroup2->mount_point;
    auto guard = Guard::start(command.agent.state_dir, cgroup2_mount,
                              command.json_out == "-" ? std::string() : command.json_out, &error);
    if (!guard)
        spdlog::warn("{}: a crash of the agent would leave its throttles until the next agent's reconcile", error);
    if (g_stop)
        return stopped_during_start_up();
    const KernelFeatures features = probe_kernel_features();
    const HookChoice choice = choose_hook_family(features, command.forced_hooks);
    if (!choice.family) {
        std::cerr << "ebpf-diskwatch agent: cannot run here: " << choice.reason << " (see: ebpf-diskwatch doctor)\n";
        return kExitCannotRunHere;
    }
    auto monitor = WriteMonitor::start(*choice.family, &error,
                                       std::make_shared<ContainerResolver>(command.agent.containers));
    if (!monitor) {
        std::cerr << "ebpf-diskwatch agent: " << error << "\n";
        return kExitCannotRunHere;
    }
    if (g_stop)
        return stopped_during_start_up();  // the monitor's destructor detaches every program
    const size_t programs = monitor->tracer().attached_programs().size();

    // The outside world (docs/integrations.md): more sinks, /metrics, the
    // control socket. Its servers may be asked before the agent exists (then
    // status is empty and release refuses) and are stopped before it goes.
    std::atomic<Agent *> running {nullptr};
    EcosystemCallbacks callbacks;
    callbacks.status = [&running] {
        Agent *agent = running.load();
        return agent ? agent->status() : nlohmann::json {{"starting", true}};
    };
    callbacks.release = [&running](const std::string &target, double snooze_s, std::string *release_error) {
        Agent *agent = running.load();
        if (!agent) {
            *release_error = "the agent is still starting";
            return false;
        }
        return agent->release(target, release_error, snooze_s);
    };
    callbacks.snapshot = [&running](GroupBy by) {
        Agent *agent = running.load();
        if (!agent)
            throw control::ControlError("snapshot: the agent is still starting; ask again");
        return agent->snapshot(by, std::chrono::seconds(5));
    };
    callbacks.act = [&running](const nlohmann::json &request, uint32_t uid, int32_t pid) {
        Agent *agent = running.load();
        if (!agent)
            throw control::ControlError("act: the agent is still starting; ask again");
        return agent->act(request, uid, pid);
    };
    const WriteTracer *tracer = &monitor->tracer();  // owned by the monitor, which the agent owns
    callbacks.program_stats = [tracer] { return tracer->program_stats(); };
    EcosystemOptions ecosystem_options = command.ecosystem;
    if (ecosystem_options.control_socket.empty())
        ecosystem_options.control_socket = command.agent.state_dir + "/control.sock";
    auto ecosystem = Ecosystem::start(ecosystem_options, DISKWATCH_VERSION, std::string(to_string(*choice.family)),
                                      callbacks, &error);
    if (!ecosystem) {
        std::cerr << "ebpf-diskwatch agent: " << error << "\n";
        return kExitFailure;
    }
    for (auto &sink : ecosystem->take_sinks())
        sinks.push_back(std::move(sink));
    std::vector<const EventSink *> watched;
    for (const auto &sink : sinks)
        if (sink->name() != "metrics")
            watched.push_back(sink.get());
    ecosystem->watch_sinks(watched);

    Agent agent(command.agent, std::move(policy), std::move(monitor), std::move(sinks));
    agent.set_report_observer([raw = ecosystem.get()](const WriteReport &report) { raw->observe_report(report); });
    agent.set_guard(guard.get());
    running = &agent;
    g_agent = &agent;
    if (g_stop)
        agent.request_stop();  // a signal between the checks above and g_agent: run() returns at once
    // Tests and scripts wait for this line (agent.start is on the event stream too).
    spdlog::info("attached {} hooks ({} programs)", to_string(*choice.family), programs);
    struct ClearAgent {
        std::atomic<Agent *> &running;
        ~ClearAgent()
        {
            g_agent = nullptr;
            running = nullptr;
        }
    } clear {running};
    const int status = agent.run();
    // No scrape or control request may reach the agent's sinks once it is gone.
    ecosystem->stop();
    return status;
}

}  // namespace

}  // namespace diskwatch
