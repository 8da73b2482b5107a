#include "ecosystem/ecosystem.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <CLI/CLI.hpp>

#include "metrics/metrics_server.h"
#include "metrics/metrics_sink.h"
#include "rules/units.h"
#include "sinks/socket_sink.h"
#include "sinks/syslog_sink.h"
#include "rules/option_checks.h"

namespace diskwatch {

namespace {

// A value its own parser checks while the command line is parsed: a bad one
// is a usage error (exit 2, one line, the value cut short), before any BPF
// program loads, not a failure a second later.
template <typename Parse>
CLI::Validator parsed_by(Parse parse, const char *what)
{
    return CLI::Validator(
        [parse](std::string &value) -> std::string {
            std::string why;
            if (!parse(value, &why))
                return cut_for_message(why.empty() ? "not valid" : why);
            return {};
        },
        what);
}

}  // namespace

void add_ecosystem_options(CLI::App &agent, EcosystemOptions &options)
{
    agent.add_option("--json-socket", options.json_socket,
                     "Also serve the events on this unix socket; any number of subscribers (socat, nc -U)");
    agent.add_option("--json-socket-connect", options.json_socket_connect,
                     "Also push the events into a shipper listening on this unix socket (Vector's socket source)");
    agent.add_option("--syslog", options.syslog,
                     "Also send the events as RFC 5424 to unix:PATH (e.g. unix:/dev/log) or udp:HOST:PORT")
        ->check(parsed_by([](const std::string &value, std::string *why) { return parse_syslog_target(value, why).has_value(); },
                          "TARGET"));
    agent.add_flag("--journald", options.journald, "Also send the events to the systemd journal (DISKWATCH_* fields)");
    agent.add_option("--metrics-listen", options.metrics_listen,
                     "Serve Prometheus metrics at http://HOST:PORT/metrics (docs/metrics.md)")
        ->check(parsed_by(
            [](const std::string &value, std::string *why) { return metrics::parse_listen_address(value, why).has_value(); },
            "HOST:PORT"));
    agent.add_option("--metrics-cgroups", options.metrics_cgroups,
                     "Export per-cgroup counters for the top N writing cgroups only (default 20)")
        ->check(count_between(0, 100000));
    agent.add_option("--control-socket", options.control_socket,
                     "The control socket for status/release (default: STATE_DIR/control.sock, "
                     "i.e. /run/ebpf-diskwatch/control.sock)");
    agent.add_option("--control-group", options.control_group,
                     "Also let this group use the control socket (socket file 0660 root:GROUP)")
        ->check(parsed_by(
            [](const std::string &value, std::string *why) {
                *why = "no group named '" + value + "'";
                return resolve_group(value, nullptr).has_value();
            },
            "GROUP"));
}

std::optional<gid_t> resolve_group(const std::string &name_or_gid, std::string *error)
{
    unsigned long number = 0;
    auto [end, ec] = std::from_chars(name_or_gid.data(), name_or_gid.data() + name_or_gid.size(), number);
    if (ec == std::errc() && end == name_or_gid.data() + name_or_gid.size())
        return static_cast<gid_t>(number);
    group entry;
    group *found = nullptr;
    std::vector<char> buffer(16384);
    if (::getgrnam_r(name_or_gid.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found) {
        if (error)
            *error = "--control-group: no group named '" + name_or_gid + "'";
        return std::nullopt;
    }
    return found->gr_gid;
}

std::unique_ptr<Ecosystem> Ecosystem::start(const EcosystemOptions &options, std::string version, std::string hooks,
                                            EcosystemCallbacks callbacks, std::string *error)
{
    metrics::AgentMetricsOptions metrics_options;
    metrics_options.cgroup_series = options.metrics_cgroups;
    metrics_options.version = std::move(version);
    metrics_options.hooks = std::move(hooks);
    std::unique_ptr<Ecosystem> ecosystem(new Ecosystem(metrics_options));
    ecosystem->callbacks_ = std::move(callbacks);
    auto fail = [&](const std::string &option, const std::string &why) -> std::unique_ptr<Ecosystem> {
        if (error)
            *error = option + ": " + why;
        return nullptr;
    };
    std::string why;

    if (!options.json_socket.empty() || !options.json_socket_connect.empty()) {
        // One sink per role so that each has its own name and counters.
        for (const auto &[listen, connect] : {std::pair {options.json_socket, std::string()},
                                              std::pair {std::string(), options.json_socket_connect}}) {
            if (listen.empty() && connect.empty())
                continue;
            SocketSinkOptions socket_options;
            socket_options.listen_path = listen;
            socket_options.connect_path = connect;
            auto sink = SocketSink::open(socket_options, &why);
            if (!sink)
                return fail(listen.empty() ? "--json-socket-connect" : "--json-socket", why);
            ecosystem->opened_.push_back(std::move(sink));
        }
    }
    if (!options.syslog.empty()) {
        auto target = parse_syslog_target(options.syslog, &why);
        if (!target)
            return fail("--syslog", why);
        auto sink = SyslogSink::open(*target, SyslogFormat {}, &why);
        if (!sink)
            return fail("--syslog", why);
        ecosystem->opened_.push_back(std::move(sink));
    }
    if (options.journald) {
        auto sink = JournaldSink::open(kJournaldSocket, "ebpf-diskwatch", &why);
        if (!sink)
            return fail("--journald", why);
        ecosystem->opened_.push_back(std::move(sink));
    }
    ecosystem->opened_.push_back(std::make_unique<metrics::MetricsSink>(ecosystem->metrics_));
    {
        std::vector<const EventSink *> watched;
        for (const auto &sink : ecosystem->opened_)
            if (sink->name() != "metrics")
                watched.push_back(sink.get());
        ecosystem->watch_sinks(watched);
    }

    Ecosystem *raw = ecosystem.get();
    ecosystem->metrics_.set_sink_source([raw] {
        std::vector<std::pair<std::string, SinkStats>> stats;
        std::lock_guard lock(raw->watched_mutex_);
        for (const auto *sink : raw->watched_)
            stats.emplace_back(sink->name(), sink->stats());
        return stats;
    });
    if (ecosystem->callbacks_.program_stats)
        ecosystem->metrics_.set_program_source(ecosystem->callbacks_.program_stats);

    if (!options.metrics_listen.empty()) {
        auto address = metrics::parse_listen_address(options.metrics_listen, &why);
        if (!address)
            return fail("--metrics-listen", why);
        ecosystem->metrics_server_ =
            metrics::MetricsServer::start(*address, [raw] { return raw->metrics_.render_text(); }, &why);
        if (!ecosystem->metrics_server_)
            return fail("--metrics-listen", why);
    }

    if (!options.control_socket.empty()) {
        control::ControlServerOptions control_options;
        control_options.path = options.control_socket;
        if (!options.control_group.empty()) {
            control_options.allowed_group = resolve_group(options.control_group, &why);
            if (!control_options.allowed_group)
                return fail("--control-group", why);
        }
        ecosystem->control_server_ = control::ControlServer::start(control_options, &why);
        if (!ecosystem->control_server_)
            return fail("--control-socket", why);
        auto &server = *ecosystem->control_server_;
        server.handle("status", [raw](const control::ControlRequest &) {
            nlohmann::json status = raw->callbacks_.status ? raw->callbacks_.status() : nlohmann::json::object();
            status["sinks"] = raw->sink_report();
            if (raw->metrics_server_)
                status["metrics_port"] = raw->metrics_server_->port();
            return status;
        });
        if (ecosystem->callbacks_.release) {
            server.handle("release", [raw](const control::ControlRequest &request) {
                std::string release_error;
                const std::string target = request.body.at("target");
                const double snooze_s = request.body.value("for_s", 0.0);  // validated: absent or in range
                if (!raw->callbacks_.release(target, snooze_s, &release_error))
                    throw control::ControlError(release_error.empty() ? "nothing to release for " + target
                                                                      : release_error);
                nlohmann::json answer {{"released", target}};
                if (snooze_s > 0)
                    answer["snooze_s"] = snooze_s;
                return answer;
            });
        }
        if (ecosystem->callbacks_.act) {
            // Throttle, kill and protect act on any process of any uid: root
            // and the agent's own uid only. --control-group members may
            // release (as `ebpf-diskwatch release` lets them), nothing more:
            // a group member could otherwise kill root's processes, or shield
            // its own runaway with protect. The peer is named in the event.
            server.handle("act", [raw](const control::ControlRequest &request) {
                const std::string action = request.body.at("action");
                if (action != "release" && request.peer.uid != 0 && request.peer.uid != ::geteuid())
                    throw control::ControlError("permission denied: " + action + " needs root (uid " +
                                                std::to_string(request.peer.uid) +
                                                " may only release, through --control-group)");
                return raw->callbacks_.act(request.body, request.peer.uid, request.peer.pid);
            });
        }
        if (ecosystem->callbacks_.snapshot) {
            server.handle("snapshot", [raw](const control::ControlRequest &request) {
                const auto by_field = request.body.find("by");  // validated: absent or a known string
                auto by = parse_group_by(by_field == request.body.end() ? "process" : by_field->get<std::string>());
                return raw->callbacks_.snapshot(by.value_or(GroupBy::process));
            });
        }
    }
    return ecosystem;
}

Ecosystem::~Ecosystem()
{
    stop();
}

void Ecosystem::stop()
{
    control_server_.reset();
    metrics_server_.reset();
    std::lock_guard lock(watched_mutex_);
    watched_.clear();
}

std::vector<std::unique_ptr<EventSink>> Ecosystem::take_sinks()
{
    return std::move(opened_);
}

void Ecosystem::watch_sinks(const std::vector<const EventSink *> &sinks)
{
    std::lock_guard lock(watched_mutex_);
    for (const auto *sink : sinks)
        if (std::find(watched_.begin(), watched_.end(), sink) == watched_.end())
            watched_.push_back(sink);
}

nlohmann::json Ecosystem::sink_report() const
{
    nlohmann::json sinks = nlohmann::json::array();
    std::lock_guard lock(watched_mutex_);
    for (const auto *sink : watched_) {
        const auto stats = sink->stats();
        nlohmann::json entry = {{"name", sink->name()},
                                {"published", stats.published},
                                {"delivered", stats.delivered},
                                {"dropped", stats.dropped},
                                {"last_error", stats.last_error}};
        if (const auto *socket = dynamic_cast<const SocketSink *>(sink))
            entry["subscribers"] = socket->peers().size();
        sinks.push_back(std::move(entry));
    }
    return sinks;
}

}  // namespace diskwatch
