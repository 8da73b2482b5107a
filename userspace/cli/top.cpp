#include "cli/top.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "cli/privileges.h"
#include "monitor/write_monitor.h"
#include "views/interactive_top.h"
#include "views/json_report.h"
#include "views/text_report.h"

namespace diskwatch {

namespace {

volatile bool g_stop = false;
const WriteMonitor *g_monitor = nullptr;  // to end its sleep on a stop signal

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

int run_batch(WriteMonitor &monitor, const TopOptions &options)
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
            monitor.pump_events(static_cast<int>(std::min<long long>(left, INT_MAX)));
        }
        if (g_stop)
            break;
        next += period;
        ReportOptions report_options{options.by, options.accumulated};
        report_options.rows_with_files = kTopRowsWithFiles;
        const WriteReport report = monitor.refresh(report_options);
        const std::string out = options.json ? to_json_line(report) + "\n" : to_text_table(report) + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    }
    return kExitOk;
}

}  // namespace

int run_top(const TopOptions &options)
{
    if (auto missing = missing_bpf_privileges(); !missing.empty()) {
        std::cerr << "ebpf-diskwatch top: " << missing << "\n";
        return kExitCannotRunHere;
    }
    if (options.delay_s <= 0) {
        std::cerr << "ebpf-diskwatch top: -d must be a positive number of seconds\n";
        return kExitUsage;
    }
    const bool interactive = !options.batch && !options.json && ::isatty(STDOUT_FILENO);
    const KernelFeatures features = probe_kernel_features();
    const HookChoice choice = choose_hook_family(features, options.forced_hooks);
    if (!choice.family) {
        std::cerr << "ebpf-diskwatch top: cannot run here: " << choice.reason << " (see: ebpf-diskwatch doctor)\n";
        return kExitCannotRunHere;
    }
    std::string error;
    auto monitor = WriteMonitor::start(*choice.family, &error);
    if (!monitor) {
        std::cerr << "ebpf-diskwatch top: " << error << "\n";
        return kExitCannotRunHere;
    }
    g_monitor = monitor.get();
    install_stop_handlers();
    // Tests and scripts wait for this line before they start writing.
    for (const auto &missing : monitor->tracer().missing_programs())
        spdlog::warn("write path not counted on this kernel: {}", missing);
    spdlog::info("attached {} hooks ({} programs); refreshing every {}s", to_string(*choice.family),
                 monitor->tracer().attached_programs().size(), options.delay_s);
    int status = kExitOk;
    if (interactive) {
        TopViewState state;
        state.by = options.by;
        state.accumulated = options.accumulated;
        status = run_interactive_top(*monitor, options.delay_s, state, &g_stop);
    } else {
        status = run_batch(*monitor, options);
    }
    g_monitor = nullptr;
    return status;
}

}  // namespace diskwatch
