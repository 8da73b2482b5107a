#include "cli/top.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "kernel/privileges.h"
#include "cli/explain_command.h"
#include "control/agent_feed.h"
#include "control/control_protocol.h"
#include "vocabulary/internal_errors.h"
#include "monitor/report_feed.h"
#include "monitor/write_monitor.h"
#include "recorder/flight_recorder.h"
#include "recorder/replay_feed.h"
#include "rules/units.h"
#include "views/interactive_top.h"
#include "views/json_report.h"
#include "views/text_report.h"

namespace diskwatch {

namespace {

volatile bool g_stop = false;
const WriteMonitor *g_monitor = nullptr;  // the local feed's, to end its sleep on a stop signal

void on_stop_signal(int)
{
    g_stop = true;
    if (g_monitor)
        g_monitor->wake();
}

void install_stop_handlers()
{
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGHUP, &action, nullptr);
}

int run_batch(ReportFeed &feed, const TopOptions &options)
{
    using clock = std::chrono::steady_clock;
    const auto period = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(options.delay_s));
    auto next = clock::now() + period;
    for (int i = 0; (options.iterations == 0 || i < options.iterations) && !g_stop; ++i) {
        // Sleep the whole interval: lifecycle records need no draining before
        // the refresh (it consumes them first; the kernel wakes us early only
        // if the ring buffer fills). Waking more often is most of an idle
        // monitor's CPU on these VMs (docs/benchmarks.md).
        while (!g_stop) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock::now()).count();
            if (left <= 0)
                break;
            feed.wait(static_cast<int>(std::min<long long>(left, INT_MAX)));
        }
        if (g_stop)
            break;
        next += period;
        ReportOptions report_options{options.by, options.accumulated};
        report_options.rows_with_files = kTopRowsWithFiles;
        report_options.all_mounts = options.all_mounts;
        std::string error;
        bool failed = false;
        // A refresh that throws is counted, said on stderr (at most once
        // every 10 s), and the next one runs.
        catch_at_boundary("top", [&] {
            auto report = feed.refresh(report_options, &error);
            if (!report) {
                failed = true;
                return;
            }
            if (options.container_grouping)
                report = group_by_container(*report, *options.container_grouping);
            const std::string out = options.json ? to_json_line(*report) + "\n" : to_text_table(*report) + "\n";
            std::fwrite(out.data(), 1, out.size(), stdout);
            std::fflush(stdout);
        });
        if (failed) {
            std::cerr << "ebpf-diskwatch top: " << error << "\n";
            return kExitFailure;
        }
    }
    return kExitOk;
}

// --replay with -b or --json: the recorded windows from the one asked for,
// at once (no waiting: the record is already there), -n of them (0: all).
int run_replay_batch(ReplayFeed &feed, const TopOptions &options)
{
    ReportOptions report_options {options.by, false};
    std::string error;
    for (int i = 0; options.iterations == 0 || i < options.iterations; ++i) {
        auto report = feed.refresh(report_options, &error);
        if (options.container_grouping)
            report = group_by_container(*report, *options.container_grouping);
        const std::string out = options.json ? to_json_line(*report) + "\n" : to_text_table(*report) + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        if (!feed.step(1))
            break;
    }
    std::fflush(stdout);
    return kExitOk;
}

int run_feed(ReportFeed &feed, const TopOptions &options, bool interactive)
{
    install_stop_handlers();
    if (!interactive)
        InternalErrors::instance().set_reporter(
            [](const std::string &thread, const std::string &what, uint64_t, uint64_t) {
                spdlog::error("internal error in {} (caught; it goes on): {}", thread, cut_for_message(what));
            });
    if (interactive) {
        TopViewState state;
        state.by = options.by;
        state.containers = options.container_grouping;
        state.can_act = feed.source() == ReportSource::agent;
        state.replay = feed.replaying();
        state.accumulated = options.accumulated;
        state.all_mounts = options.all_mounts;
        return run_interactive_top(feed, options.delay_s, state, &g_stop);
    }
    return run_batch(feed, options);
}

}  // namespace

int run_top(const TopOptions &options)
{
    if (options.delay_s <= 0) {
        std::cerr << "ebpf-diskwatch top: -d must be a positive number of seconds\n";
        return kExitUsage;
    }
    const bool interactive = !options.batch && !options.json && ::isatty(STDOUT_FILENO);
    if (!options.replay.empty()) {
        const double now_s =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        std::string error;
        const auto at = parse_when(options.replay, now_s, &error);
        if (!at) {
            std::cerr << "ebpf-diskwatch top: --replay " << error << "\n";
            return kExitUsage;
        }
        auto feed = ReplayFeed::open(recorder_to_read(options.recorder, options.control_socket), *at, &error);
        if (!feed) {
            std::cerr << "ebpf-diskwatch top: " << error << "\n";
            return kExitFailure;
        }
        for (const auto &warning : feed->history().warnings)
            spdlog::warn("{}", warning);
        if (!interactive)
            return run_replay_batch(*feed, options);
        return run_feed(*feed, options, true);
    }
    // A running agent already counts every write: read its counters rather
    // than load a second copy of the programs. Forcing --hooks means ours.
    if (!options.local && !options.forced_hooks) {
        const std::string socket = options.control_socket.empty() ? control::kDefaultSocketPath : options.control_socket;
        std::string why;
        if (auto feed = AgentFeed::attach(socket, &why)) {
            // Tests and scripts wait for this line before they start writing.
            spdlog::info("attached to the agent (pid {}) on {}: its {} hooks ({} programs), no BPF programs loaded "
                         "here; refreshing every {}s",
                         feed->agent_pid(), socket, feed->hooks(), feed->agent_programs(), options.delay_s);
            return run_feed(*feed, options, interactive);
        }
        spdlog::info("no agent to attach to ({}); loading our own BPF programs", why);
    }
    if (auto missing = missing_bpf_privileges(); !missing.empty()) {
        std::cerr << "ebpf-diskwatch top: " << missing << "\n";
        return kExitCannotRunHere;
    }
    const KernelFeatures features = probe_kernel_features();
    const HookChoice choice = choose_hook_family(features, options.forced_hooks);
    if (!choice.family) {
        std::cerr << "ebpf-diskwatch top: cannot run here: " << choice.reason << " (see: ebpf-diskwatch doctor)\n";
        return kExitCannotRunHere;
    }
    std::string error;
    auto monitor =
        WriteMonitor::start(*choice.family, &error, std::make_shared<ContainerResolver>(options.containers));
    if (!monitor) {
        std::cerr << "ebpf-diskwatch top: " << error << "\n";
        return kExitCannotRunHere;
    }
    for (const auto &missing : monitor->tracer().missing_programs())
        spdlog::warn("write path not counted on this kernel: {}", missing);
    spdlog::info("attached {} hooks ({} programs); refreshing every {}s", to_string(*choice.family),
                 monitor->tracer().attached_programs().size(), options.delay_s);
    LocalFeed feed(*monitor);
    g_monitor = monitor.get();
    const int status = run_feed(feed, options, interactive);
    g_monitor = nullptr;
    return status;
}

}  // namespace diskwatch
