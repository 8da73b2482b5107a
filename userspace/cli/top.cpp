#include "cli/top.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
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

void on_stop_signal(int) { g_stop = true; }

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
        // Sleep in the ring buffer's poll, so lifecycle records drain as they come.
        while (!g_stop) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock::now()).count();
            if (left <= 0)
                break;
            monitor.pump_events(static_cast<int>(std::min<long long>(left, 100)));
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
    install_stop_handlers();
    // Tests and scripts wait for this line before they start writing.
    for (const auto &missing : monitor->tracer().missing_programs())
        spdlog::warn("write path not counted on this kernel: {}", missing);
    spdlog::info("attached {} hooks ({} programs); refreshing every {}s", to_string(*choice.family),
                 monitor->tracer().attached_programs().size(), options.delay_s);
    if (interactive) {
        TopViewState state;
        state.by = options.by;
        state.accumulated = options.accumulated;
        return run_interactive_top(*monitor, options.delay_s, state, &g_stop);
    }
    return run_batch(*monitor, options);
}

}  // namespace diskwatch
