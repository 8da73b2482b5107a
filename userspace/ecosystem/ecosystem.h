// What the agent runs beside its rule loop for the world outside (docs/integrations.md): the
// extra event sinks (--json-socket, --json-socket-connect, --syslog, --journald), the
// Prometheus endpoint (--metrics-listen) and the control socket (--control-socket). The agent
// hands it callbacks for what only it knows (status, release, snapshot) and a report per
// refresh; everything else is here.
//
// Lifetime: the sinks it opens are handed to the agent (which owns and flushes them); stop()
// must be called before the agent and its sinks are destroyed, so that no scrape or control
// request reaches them afterwards.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "control/control_server.h"
#include "kernel/write_tracer.h"
#include "metrics/agent_metrics.h"
#include "metrics/metrics_server.h"
#include "sinks/event_sink.h"

namespace CLI {
class App;
}

namespace diskwatch {

struct EcosystemOptions {
    std::string json_socket;          // --json-socket PATH
    std::string json_socket_connect;  // --json-socket-connect PATH
    std::string syslog;               // --syslog unix:PATH | udp:HOST:PORT
    bool journald = false;            // --journald
    std::string metrics_listen;       // --metrics-listen HOST:PORT (empty: no endpoint)
    size_t metrics_cgroups = 20;      // --metrics-cgroups N
    // --control-socket PATH; empty: none here, and the agent makes it
    // <state-dir>/control.sock (/run/ebpf-diskwatch/control.sock by default).
    std::string control_socket;
    std::string control_group;        // --control-group NAME|GID
};

// Registers the options above on the agent subcommand (docs/cli.md).
void add_ecosystem_options(CLI::App &agent, EcosystemOptions &options);

// A group name or number, for --control-group.
std::optional<gid_t> resolve_group(const std::string &name_or_gid, std::string *error);

struct EcosystemCallbacks {
    // {"cmd":"status"}: the agent's part (policy, hooks, offenders, kernel drops); the
    // ecosystem adds "sinks" and "metrics".
    std::function<nlohmann::json()> status;
    // {"cmd":"release","target":...,"for_s":...}: true when something was released (and,
    // for_s > 0, snoozed that long); else *error says why.
    std::function<bool(const std::string &target, double snooze_s, std::string *error)> release;
    // {"cmd":"snapshot","by":...}: the response's fields ({"report": the agent's
    // cumulative rows as `top --json -a`, ...}; docs/control.md).
    std::function<nlohmann::json(GroupBy by)> snapshot;
    // {"cmd":"act",...} (validated), from the peer `uid`/`pid`: the response's
    // fields ({"done": ...}); throws control::ControlError with why not.
    std::function<nlohmann::json(const nlohmann::json &request, uint32_t uid, int32_t pid)> act;
    // ebpf_diskwatch_bpf_program_* series.
    std::function<std::vector<ProgramStats>()> program_stats;
};

class Ecosystem {
public:
    // Opens every sink and server the options ask for. Errors name the option.
    static std::unique_ptr<Ecosystem> start(const EcosystemOptions &options, std::string version,
                                            std::string hooks, EcosystemCallbacks callbacks, std::string *error);
    ~Ecosystem();

    // The opened sinks, to append to the agent's (stdout or --json-out) sinks; includes the
    // metrics sink that counts events and actions. Call once.
    std::vector<std::unique_ptr<EventSink>> take_sinks();
    // Every sink the agent publishes to, for the drop counters in /metrics and `status`
    // (the agent's own sinks too). Pointers must stay valid until stop().
    void watch_sinks(const std::vector<const EventSink *> &sinks);

    void observe_report(const WriteReport &report) { metrics_.observe_report(report); }
    metrics::AgentMetrics &metrics() { return metrics_; }
    uint16_t metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }

    void stop();  // closes the endpoint and the control socket; idempotent

private:
    explicit Ecosystem(metrics::AgentMetricsOptions metrics_options) : metrics_(std::move(metrics_options)) {}
    nlohmann::json sink_report() const;

    metrics::AgentMetrics metrics_;
    EcosystemCallbacks callbacks_;
    std::vector<std::unique_ptr<EventSink>> opened_;
    mutable std::mutex watched_mutex_;
    std::vector<const EventSink *> watched_;
    std::unique_ptr<metrics::MetricsServer> metrics_server_;
    std::unique_ptr<control::ControlServer> control_server_;
};

}  // namespace diskwatch
