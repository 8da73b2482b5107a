#include "cli/doctor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernel/privileges.h"
#include "control/control_client.h"
#include "control/control_protocol.h"
#include "kernel/bpf_stats.h"
#include "kernel/write_tracer.h"
#include "resolve/kernel_files.h"
#include "resolve/mountinfo.h"

namespace diskwatch {

namespace {

std::vector<std::string> cgroup2_controllers(const std::string &mount_point)
{
    const auto file = read_kernel_file(mount_point + "/cgroup.controllers");
    std::vector<std::string> controllers;
    std::istringstream names(file.text);
    std::string name;
    while (names >> name)
        controllers.push_back(name);
    return controllers;
}

// What each attached program cost the kernel over the --stats window.
struct ProgramRunTime {
    std::string name;
    uint64_t run_count = 0;
    uint64_t run_time_ns = 0;
    double ns_per_run() const { return run_count ? double(run_time_ns) / double(run_count) : 0.0; }
};

struct RunTimeWindow {
    std::string mechanism;  // how bpf_stats was turned on
    int sysctl_before = -1;
    int sysctl_after = -1;
    double seconds = 0;
    std::vector<ProgramRunTime> programs;
    std::string error;
};

// Turns bpf_stats on, lets the attached programs run for the window (draining
// their lifecycle records as top does), and returns the per-program deltas.
RunTimeWindow measure_run_time(WriteTracer &tracer, double seconds)
{
    RunTimeWindow window;
    window.sysctl_before = read_bpf_stats_sysctl();
    {
        auto stats = BpfStatsWindow::open(&window.error);
        if (!stats)
            return window;
        window.mechanism = stats->mechanism();
        const auto before = tracer.program_stats();
        const auto start = std::chrono::steady_clock::now();
        const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                          std::chrono::duration<double>(seconds));
        while (std::chrono::steady_clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now()).count();
            tracer.poll_events(static_cast<int>(std::clamp<long long>(left, 1, 100)), [](const ProcessEvent &) {});
        }
        const auto after = tracer.program_stats();
        window.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        for (const auto &program : after) {
            ProgramRunTime delta{program.name, program.run_count, program.run_time_ns};
            for (const auto &old : before)
                if (old.name == program.name) {
                    delta.run_count -= old.run_count;
                    delta.run_time_ns -= old.run_time_ns;
                }
            window.programs.push_back(delta);
        }
    }
    window.sysctl_after = read_bpf_stats_sysctl();
    return window;
}

nlohmann::json to_json(const RunTimeWindow &window)
{
    nlohmann::json programs = nlohmann::json::array();
    for (const auto &p : window.programs)
        programs.push_back({{"program", p.name},
                            {"run_cnt", p.run_count},
                            {"run_time_ns", p.run_time_ns},
                            {"ns_per_run", p.ns_per_run()}});
    return {{"window_s", window.seconds},
            {"mechanism", window.mechanism},
            {"bpf_stats_enabled_before", window.sysctl_before},
            {"bpf_stats_enabled_after", window.sysctl_after},
            {"programs", programs},
            {"error", window.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(window.error)}};
}

void print_run_time(const RunTimeWindow &window)
{
    if (!window.error.empty()) {
        std::printf("\nbpf_stats     CANNOT MEASURE: %s\n", window.error.c_str());
        return;
    }
    std::printf("\nkernel run time over %.1fs (bpf_stats via %s; kernel.bpf_stats_enabled %d before, %d after):\n",
                window.seconds, window.mechanism.c_str(), window.sysctl_before, window.sysctl_after);
    std::printf("  %-22s %12s %10s %12s\n", "program", "runs", "ns/run", "CPU %");
    for (const auto &p : window.programs)
        std::printf("  %-22s %12llu %10.1f %12.4f\n", p.name.c_str(), static_cast<unsigned long long>(p.run_count),
                    p.ns_per_run(), window.seconds > 0 ? 100.0 * double(p.run_time_ns) / 1e9 / window.seconds : 0.0);
}

// Which source `top` would use: a running agent's counters when one answers on
// the control socket, else its own programs.
struct AgentProbe {
    std::string socket;
    bool running = false;
    int pid = 0;
    std::string hooks;
    std::string error;
};

AgentProbe probe_agent(const std::string &socket)
{
    AgentProbe probe;
    probe.socket = socket.empty() ? control::kDefaultSocketPath : socket;
    auto status = control::send_request(probe.socket, control::status_request(), std::chrono::seconds(3), &probe.error);
    if (status && status->value("ok", false)) {
        probe.running = true;
        probe.pid = status->value("pid", 0);
        probe.hooks = status->value("hooks", std::string());
    } else if (status) {
        probe.error = status->value("error", std::string("refused"));
    }
    return probe;
}

}  // namespace

int run_doctor(const DoctorOptions &options)
{
    if (auto missing = missing_bpf_privileges(); !missing.empty()) {
        std::cerr << "ebpf-diskwatch doctor: " << missing << "\n";
        return kExitCannotRunHere;
    }
    const KernelFeatures features = probe_kernel_features();
    const HookChoice choice = choose_hook_family(features, options.forced_hooks);

    // Prove the choice: load and attach the real programs, then detach.
    std::vector<std::string> attached, missing;
    bool typed_file_reads = false;
    std::string attach_error;
    std::optional<RunTimeWindow> run_time;
    if (choice.family) {
        if (auto tracer = WriteTracer::start(*choice.family, &attach_error)) {
            attached = tracer->attached_programs();
            missing = tracer->missing_programs();
            typed_file_reads = tracer->typed_file_reads();
            if (options.stats)
                run_time = measure_run_time(*tracer, options.stats_seconds);
        }
    }
    const bool ok = choice.family && attach_error.empty() && !(run_time && !run_time->error.empty());

    const AgentProbe agent = probe_agent(options.control_socket);
    const MountTable mounts = MountTable::load();
    const MountEntry *cgroup2 = mounts.find_cgroup2();
    const auto controllers = cgroup2 ? cgroup2_controllers(cgroup2->mount_point) : std::vector<std::string>{};

    if (options.json) {
        nlohmann::json hooks = nlohmann::json::object();
        for (auto family : kHookPreference) {
            const auto &probe = features.hooks.at(family);
            hooks[std::string(to_string(family))] = {{"available", probe.available}, {"detail", probe.detail}};
        }
        nlohmann::json doc = {
            {"ok", ok},
            {"kernel", features.kernel_release},
            {"btf", features.btf_vmlinux},
            {"hooks", hooks},
            {"ringbuf", {{"available", features.ringbuf.available}, {"detail", features.ringbuf.detail}}},
            {"tracefs", features.tracefs_mounted ? nlohmann::json(features.tracefs_path) : nlohmann::json(nullptr)},
            {"chosen_hooks", choice.family ? nlohmann::json(std::string(to_string(*choice.family))) : nlohmann::json(nullptr)},
            {"reason", choice.reason},
            {"programs", attached},
            {"not_counted", missing},  // optional write-path programs this kernel lacks
            {"typed_file_reads", typed_file_reads},
            {"error", attach_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(attach_error)},
            {"cgroup2",
             cgroup2 ? nlohmann::json{{"mount", cgroup2->mount_point}, {"controllers", controllers}}
                     : nlohmann::json(nullptr)},
        };
        if (run_time)
            doc["stats"] = to_json(*run_time);
        doc["agent"] = {{"socket", agent.socket},
                        {"running", agent.running},
                        {"pid", agent.running ? nlohmann::json(agent.pid) : nlohmann::json(nullptr)},
                        {"hooks", agent.running ? nlohmann::json(agent.hooks) : nlohmann::json(nullptr)},
                        {"error", agent.running ? nlohmann::json(nullptr) : nlohmann::json(agent.error)},
                        {"top_source", agent.running ? "agent" : "local"}};
        std::cout << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return ok ? kExitOk : kExitCannotRunHere;
    }

    std::printf("kernel        %s\n", features.kernel_release.c_str());
    std::printf("BTF           %s\n", features.btf_vmlinux ? "yes (/sys/kernel/btf/vmlinux)" : "NO");
    std::printf("ring buffer   %s\n", features.ringbuf.available ? "yes" : ("NO: " + features.ringbuf.detail).c_str());
    std::printf("tracefs       %s\n", features.tracefs_mounted ? features.tracefs_path.c_str() : "not mounted");
    std::printf("hook families (cheapest first):\n");
    for (auto family : kHookPreference) {
        const auto &probe = features.hooks.at(family);
        std::printf("  %-11s %s%s\n", std::string(to_string(family)).c_str(), probe.available ? "yes" : "no",
                    probe.available ? "" : ("  (" + probe.detail + ")").c_str());
    }
    if (cgroup2) {
        std::string joined;
        for (const auto &c : controllers)
            joined += (joined.empty() ? "" : " ") + c;
        std::printf("cgroup v2     %s  controllers: %s\n", cgroup2->mount_point.c_str(),
                    joined.empty() ? "(none enabled)" : joined.c_str());
    } else {
        std::printf("cgroup v2     not mounted: cgroup columns will show ids only\n");
    }
    if (agent.running)
        std::printf("agent         pid %d (%s hooks) on %s: top reads its counters (--local: its own)\n", agent.pid,
                    agent.hooks.c_str(), agent.socket.c_str());
    else
        std::printf("agent         none answering on %s: top loads its own programs (%s)\n", agent.socket.c_str(),
                    agent.error.c_str());
    if (!choice.family) {
        std::printf("\nCANNOT RUN: %s\n", choice.reason.c_str());
        return kExitCannotRunHere;
    }
    std::printf("\nwould attach  %s (%s)\n", std::string(to_string(*choice.family)).c_str(), choice.reason.c_str());
    if (!attach_error.empty()) {
        std::printf("CANNOT RUN: %s\n", attach_error.c_str());
        return kExitCannotRunHere;
    }
    for (const auto &program : attached)
        std::printf("  attached    %s\n", program.c_str());
    for (const auto &program : missing)
        std::printf("  not counted %s\n", program.c_str());
    if (*choice.family == HookFamily::tp_btf)
        std::printf("  file reads  %s\n", typed_file_reads ? "typed (bpf_rdonly_cast: direct loads)"
                                                           : "probe reads (no bpf_rdonly_cast in this kernel)");
    if (run_time) {
        print_run_time(*run_time);
        if (!run_time->error.empty())
            return kExitCannotRunHere;
    }
    std::printf("ok: ebpf-diskwatch can run here\n");
    return kExitOk;
}

}  // namespace diskwatch
