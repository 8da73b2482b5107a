// The daemon: kernel counters -> rules -> enforcement -> events, in one loop.
// Rate alarms from the kernel wake it between its periodic evaluations.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <array>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/enforcer.h"
#include "agent/guard.h"
#include "agent/service_manager.h"
#include "ecosystem/ecosystem.h"
#include "events/events.h"
#include "kernel/hooks.h"
#include "resolve/containers.h"
#include "monitor/write_monitor.h"
#include "recorder/flight_recorder.h"
#include "vocabulary/drop_reasons.h"
#include "rules/mount_watch.h"
#include "rules/policy.h"
#include "rules/rule_engine.h"
#include "sinks/event_sink.h"

namespace diskwatch {

struct AgentOptions {
    std::optional<std::string> config_path;  // nullopt: the built-in default policy
    bool dry_run = false;                    // --dry-run (or the policy's dry_run)
    std::string state_dir = "/run/ebpf-diskwatch";
    // --all-mounts: overlays and the other mounts hidden by default in the
    // mount rows, /metrics and mount events too (resolve/mountinfo.h).
    bool all_mounts = false;
    ContainerRoots containers;  // --docker-root, --containers-storage, --containerd-state
    // --recorder DIR|off: the flight recorder's directory, over the policy's
    // recorder.path; "off": none. Empty: as the policy says.
    std::string recorder;
};

// A subject a rule holds for now (the control socket lists these).
struct Offender {
    std::string rule;
    Subject subject;
    RuleMeasures measures;
};

class Agent {
public:
    Agent(AgentOptions options, Policy policy, std::unique_ptr<WriteMonitor> monitor,
          std::vector<std::unique_ptr<EventSink>> sinks);
    ~Agent();

    // Runs until request_stop() (SIGTERM/SIGINT), then releases everything,
    // emits agent.stop and flushes the sinks. Returns the exit code.
    int run();
    // Async-signal-safe requests (the signal handlers call them).
    // Each ends the loop's sleep (an eventfd write).
    void request_stop()
    {
        stop_requested_ = true;
        monitor_->wake();
    }
    void request_reload()
    {
        reload_requested_ = true;
        monitor_->wake();
    }

    // For the control socket and metrics: what is going on now. Thread-safe
    // (callable from another thread while run() loops).
    std::vector<Offender> offenders() const;
    std::vector<ActiveAction> actions() const { return enforcer_->active(); }
    bool release(const std::string &target, std::string *error, double snooze_s = 0);
    Policy policy() const;
    void emit(const Event &event);
    // `ebpf-diskwatch status` (docs/control.md): policy, hooks, offenders,
    // active actions, the kernel side's drops. Thread-safe.
    nlohmann::json status() const;
    // The latest refresh as `top --json` (rows by process). Thread-safe.
    nlohmann::json latest_report() const;
    // The control socket's `snapshot` (docs/control.md): every group that wrote
    // since the agent started, grouped `by`, with totals (`top` attached to the
    // agent diffs two of them), and what the agent is doing to whom. Built by
    // the agent's next refresh after the request (nothing is built when nobody
    // asks): waits for it, up to `wait` (or two intervals, if longer). Thread-safe.
    nlohmann::json snapshot(GroupBy by, std::chrono::milliseconds wait);
    // The control socket's `act` (docs/control.md): an operator's throttle,
    // kill, release or protect, asked from top by `peer`, acted on through
    // the enforcer as a rule would be (agent/operator_requests.cpp). Returns
    // {"done": what was done}; throws control::ControlError with why not.
    // Thread-safe.
    nlohmann::json act(const nlohmann::json &request, uint32_t peer_uid, int32_t peer_pid);
    // The guard (agent/guard.h) the loop beats for; nullptr: none.
    void set_guard(Guard *guard)
    {
        guard_ = guard;
        exempt_guard();
    }
    // Called with each refresh's report, on the agent's thread (metrics).
    void set_report_observer(std::function<void(const WriteReport &)> observer)
    {
        report_observer_ = std::move(observer);
    }

private:
    void apply_policy();
    void reload();
    void evaluate(double now_s);
    // The refresh, in the three groupings, to the flight recorder.
    void record(const WriteReport &report);
    void start_recorder();
    static constexpr size_t kRecordedRowsWithFiles = 10;
    void emit_mount_alerts(const WriteReport &report);
    void check_drops(const DropCounters &drops, double now_s);
    void build_cumulative_reports();
    // Every group that wrote since the start, grouped `by`, from the refresh
    // after the call (see snapshot); *interval_s: the policy's interval.
    WriteReport cumulative_report(GroupBy by, std::chrono::milliseconds wait, double *interval_s);
    void loop_pass(double &next_s, double &last_eval_s);
    void watch_guard(double now_s);
    std::string running_status() const;  // systemctl status's line
    void exempt_guard();  // the kernel never stops the guard, and its SIGCONTs are no defiance

    mutable std::mutex state_mutex_;  // guards policy_ and engine_ against the control socket's reads
    AgentOptions options_;
    Policy policy_;
    std::unique_ptr<WriteMonitor> monitor_;
    std::vector<std::unique_ptr<EventSink>> sinks_;
    std::string host_;
    std::unique_ptr<RuleEngine> engine_;
    std::unique_ptr<MountWatch> mount_watch_;
    std::unique_ptr<KernelThrottles> kernel_throttles_;  // the enforcer's view of the tracer's throttle maps
    std::unique_ptr<Enforcer> enforcer_;
    // Declared after the sinks: it is gone (its windows written) before they are.
    std::unique_ptr<FlightRecorder> recorder_;
    mutable std::mutex recorder_mutex_;  // recorder_ itself: set and reset on the loop's thread, read from others
    double files_named_s_ = 0;  // when the recorder's rows last had their files named
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> reload_requested_{false};
    bool alarm_pending_ = false;
    double follow_up_s_ = std::numeric_limits<double>::infinity();  // an evaluation due after an alarm's
    uint64_t alarms_ = 0;
    DropCounters last_drops_;  // as of the last warning of each reason
    static constexpr double kDropWarningGapS = 60;
    std::array<double, std::size(kDropReasons)> drop_warned_s_{};  // steady time of each reason's last warning
    std::map<std::string, std::vector<ReportRow>> recent_rows_by_mount_;
    // runaway events: one per state change per (subject, rule), across reloads too.
    EventDeduplicator runaway_dedup_;
    std::function<void(const WriteReport &)> report_observer_;
    mutable std::mutex report_mutex_;  // guards latest_report_ and latest_drops_ for the control socket
    std::optional<WriteReport> latest_report_;
    DropCounters latest_drops_;
    // Cumulative reports per grouping for `snapshot`, under report_mutex_: a
    // request marks its grouping, the next refresh builds it (one grouping per
    // request, none when nobody asks) and stamps it with its generation.
    std::array<std::optional<WriteReport>, 3> cumulative_;
    std::array<uint64_t, 3> cumulative_generation_{};
    std::array<bool, 3> snapshot_requested_{};
    uint64_t refresh_generation_ = 0;
    std::condition_variable cumulative_ready_;
    Guard *guard_ = nullptr;
    double guard_restart_s_ = 0;  // the last restart of an exited guard (at most one per 10 s)
    ServiceManager service_;      // systemd: readiness, reload, stop, watchdog
};

// Loads the policy named by options (or the default), starts the monitor
// and runs the agent with stdout or --json-out as its sink. Used by main.
struct AgentCommand {
    AgentOptions agent;
    std::string json_out;  // empty: stdout
    std::string json_max_size;  // --json-max-size SIZE (with --json-out): rotate at this size
    unsigned json_keep = 5;     // --json-keep N: rotated files kept
    std::optional<HookFamily> forced_hooks;
    // --json-socket, --syslog, --metrics-listen, --control-socket, ...
    // (an empty control_socket means <state_dir>/control.sock).
    EcosystemOptions ecosystem;
};
int run_agent(const AgentCommand &command);

// SIGTERM/SIGINT/SIGHUP for the agent: flags its start-up and loop check. main()
// installs them before it parses the command line, so that a stop in the
// first milliseconds is a clean exit too; for any other command it gives the
// signals back (and a stop that came meanwhile ends the process, as it would have).
void install_agent_signal_handlers();
void restore_default_signal_handlers();

}  // namespace diskwatch
