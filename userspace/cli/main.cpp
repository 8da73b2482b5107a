// ebpf-diskwatch: a thin main over the libraries in userspace/ (bpftrace's
// layout): parse the command line, hand off to one command.
#include <malloc.h>

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "cli/check_config.h"
#include "cli/control_commands.h"
#include "cli/doctor.h"
#include "cli/explain_command.h"
#include "cli/log_setup.h"
#include "rules/option_checks.h"
#include "kernel/privileges.h"
#include "cli/top.h"
#include "diskwatch/version.h"
#include "rules/units.h"

namespace {

bool g_verbose = false;

int print_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
    if (level == LIBBPF_DEBUG && !g_verbose)
        return 0;
    if (level != LIBBPF_WARN && !g_verbose)
        return 0;
    return std::vfprintf(stderr, format, args);
}

std::optional<diskwatch::HookFamily> parse_hooks_option(const std::string &value)
{
    if (value == "auto")
        return std::nullopt;
    return diskwatch::parse_hook_family(value);
}

}  // namespace

int main(int argc, char **argv)
{
    // Loading the BPF object parses the kernel's BTF (several MiB of
    // short-lived buffers). With glibc's default, the first such buffer freed
    // raises the mmap threshold and later ones land in the heap, where they
    // stay resident; a fixed threshold keeps big blocks in mmap, returned to
    // the kernel when freed: ~1.8 MiB less peak RSS for a process that runs
    // forever (docs/benchmarks.md).
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    diskwatch::install_agent_signal_handlers();
    CLI::App app{"ebpf-diskwatch: who writes how many bytes to which disk, from the kernel (CO-RE eBPF)"};
    app.set_version_flag("-V,--version", std::string("ebpf-diskwatch ") + DISKWATCH_VERSION);
    app.add_flag("-v,--verbose", g_verbose, "Debug logs, including libbpf's and the verifier's");
    app.require_subcommand(1);

    const std::vector<std::string> hook_names = {"auto", "fentry", "tp_btf", "raw_tp", "tracepoint"};

    diskwatch::DoctorOptions doctor;
    std::string doctor_hooks = "auto";
    auto *doctor_cmd = app.add_subcommand("doctor", "Check what this kernel offers and which hooks would attach");
    doctor_cmd->add_flag("--json", doctor.json, "One JSON object (kernel, features, chosen hooks)");
    doctor_cmd->add_option("--hooks", doctor_hooks, "Force a hook family instead of the cheapest available")
        ->check(CLI::IsMember(hook_names));
    doctor_cmd->add_flag("--stats", doctor.stats,
                         "Also measure each program's kernel run time (bpf_stats) for a short window");
    doctor_cmd->add_option("--control-socket", doctor.control_socket,
                           "Where to look for a running agent (default /run/ebpf-diskwatch/control.sock)");
    doctor_cmd->add_option("--stats-seconds", doctor.stats_seconds, "Length of the --stats window (default 2)")
        ->check(diskwatch::seconds_between(0.1, 600));

    diskwatch::TopOptions top;
    std::string top_hooks = "auto";
    std::string top_by = "process";
    auto *top_cmd = app.add_subcommand("top", "Live view of the writers, like iotop (batch with -b)");
    top_cmd->add_flag("-b,--batch", top.batch, "Batch mode: print each refresh instead of the live view");
    top_cmd->add_option("-n,--iterations", top.iterations, "Refreshes before exiting (batch; 0 = forever)")
        ->check(diskwatch::count_between(0, 1000000000));
    top_cmd->add_option("-d,--delay", top.delay_s, "Seconds between refreshes (default 1)")
        ->check(diskwatch::seconds_between(0.01, 3600));
    top_cmd->add_flag("--json", top.json, "Batch output as one JSON object per refresh (docs/top-json.md)");
    top_cmd->add_option("--by", top_by,
                        "Row key: process (pid, mount), cgroup (cgroup, mount), mount, container (container, mount) "
                        "or service (Compose project/service, mount)")
        ->check(CLI::IsMember({"process", "cgroup", "mount", "container", "service"}));
    top_cmd->add_flag("-a,--accumulated", top.accumulated, "Keep idle rows that wrote since start");
    top_cmd->add_option("--hooks", top_hooks, "Force a hook family instead of the cheapest available (implies --local)")
        ->check(CLI::IsMember(hook_names));
    top_cmd->add_flag("--local", top.local,
                      "Load our own BPF programs even when an agent runs (default: read the agent's counters)");
    top_cmd->add_flag("--all-mounts", top.all_mounts,
                      "List overlay (container roots), squashfs and other mounts hidden by default (docs/cli.md)");
    top_cmd->add_option("--control-socket", top.control_socket,
                        "The agent's control socket to attach to (default /run/ebpf-diskwatch/control.sock)");
    top_cmd->add_option("--docker-root", top.containers.docker,
                        "Docker's data root, read for container names (default /var/lib/docker; with --local)");
    top_cmd->add_option("--containers-storage", top.containers.containers_storage,
                        "podman's and CRI-O's storage root (default /var/lib/containers/storage; with --local)");
    top_cmd->add_option("--containerd-state", top.containers.containerd_state,
                        "containerd's state directory, read for container names (default /run/containerd; with --local)");

    top_cmd->add_option("--replay", top.replay,
                        "Show the flight record from this time on (\"2h ago\", \"14:00\", \"2026-12-05 14:00\"): "
                        "[ and ] step, space plays; with --json, its documents (docs/explain.md)");
    top_cmd->add_option("--recorder", top.recorder,
                        "The flight record to replay (default: the running agent's, else /var/lib/ebpf-diskwatch/recorder)");

    diskwatch::ExplainCommand explain;
    auto *explain_cmd = app.add_subcommand(
        "explain", "Why is this disk full? Who filled it, where the bytes are, what holds them (docs/explain.md)");
    explain_cmd->add_option("mount", explain.mount, "A path on the filesystem (default: the fullest one recorded)");
    explain_cmd->add_option("--since", explain.since, "How far back to look (default \"24h ago\")");
    explain_cmd->add_flag("--json", explain.json, "One JSON document (docs/explain.md)");
    explain_cmd->add_option("--recorder", explain.recorder,
                            "The flight record to read (default: the running agent's, else "
                            "/var/lib/ebpf-diskwatch/recorder)");
    explain_cmd->add_option("--control-socket", explain.control_socket,
                            "Where to ask a running agent for its record (default /run/ebpf-diskwatch/control.sock)");
    explain_cmd->add_option("--top", explain.top, "Rows per list (default 5)")->check(diskwatch::count_between(1, 1000));

    diskwatch::AgentCommand agent;
    std::string agent_config;
    std::string agent_hooks = "auto";
    auto *agent_cmd = app.add_subcommand("agent", "Run the daemon: detect runaway writers, act by policy, stream events");
    agent_cmd->add_option("--config", agent_config, "Policy YAML (docs/policy.md); default: alert-only built-in policy");
    agent_cmd->add_flag("--dry-run", agent.agent.dry_run, "Emit every action with \"dry_run\": true, act on nothing");
    agent_cmd->add_option("--json-out", agent.json_out, "Where the NDJSON events go (docs/events.md); default stdout");
    agent_cmd->add_option("--json-max-size", agent.json_max_size,
                          "Rotate --json-out at this size (e.g. 100MiB): FILE -> FILE.1 ... FILE.N, oldest dropped");
    agent_cmd->add_option("--json-keep", agent.json_keep, "Rotated --json-out files kept (default 5)")
        ->check(diskwatch::count_between(0, 1000));
    agent_cmd->add_option("--state-dir", agent.agent.state_dir,
                          "Where to record what is stopped or frozen, for a restarted agent (default /run/ebpf-diskwatch)");
    agent_cmd->add_option("--recorder", agent.agent.recorder,
                          "The flight recorder's directory, over the policy's recorder.path, or \"off\" "
                          "(default $STATE_DIRECTORY/recorder, else /var/lib/ebpf-diskwatch/recorder)");
    agent_cmd->add_option("--hooks", agent_hooks, "Force a hook family instead of the cheapest available")
        ->check(CLI::IsMember(hook_names));
    agent_cmd->add_flag("--all-mounts", agent.agent.all_mounts,
                        "Mount rows, /metrics and mount events for overlay and other mounts hidden by default too");
    agent_cmd->add_option("--docker-root", agent.agent.containers.docker,
                          "Docker's data root, read for container names, images, Compose labels (default /var/lib/docker)");
    agent_cmd->add_option("--containers-storage", agent.agent.containers.containers_storage,
                          "podman's and CRI-O's storage root, read for container names (default "
                          "/var/lib/containers/storage)");
    agent_cmd->add_option("--containerd-state", agent.agent.containers.containerd_state,
                          "containerd's state directory, read for the names of its containers (ctr, nerdctl, "
                          "Kubernetes) (default /run/containerd)");
    diskwatch::add_ecosystem_options(*agent_cmd, agent.ecosystem);

    std::string check_config_file;
    auto *check_config_cmd = app.add_subcommand("check-config", "Validate a policy file (docs/policy.md)");
    check_config_cmd->add_option("FILE", check_config_file, "The policy YAML")->required();

    // Requests to the running agent over its control socket (docs/control.md).
    diskwatch::StatusOptions status;
    auto *status_cmd = app.add_subcommand("status", "Ask the running agent: policy, hooks, offenders, drops");
    status_cmd->add_flag("--json", status.json, "The agent's answer as one JSON object");
    status_cmd->add_option("--control-socket", status.socket, "The agent's control socket");
    diskwatch::ReleaseOptions release;
    auto *release_cmd = app.add_subcommand("release", "Ask the running agent to release a throttled or frozen offender");
    release_cmd->add_option("TARGET", release.target, "A pid or a cgroup path")->required();
    release_cmd->add_option("--for", release.snooze, "And do not act on it again for this long (e.g. 10m; at most 1 week)")
        ->check(diskwatch::policy_duration(diskwatch::control::kMaxSnoozeSeconds));
    release_cmd->add_option("--control-socket", release.socket, "The agent's control socket");

    // The guard the agent starts (agent/guard.h): not a command for people.
    diskwatch::GuardOptions guard;
    auto *guard_cmd = app.add_subcommand("guard", "")->group("");  // hidden from --help
    guard_cmd->add_option("--agent-pid", guard.agent_pid)->required();
    guard_cmd->add_option("--state-dir", guard.state_dir)->required();
    guard_cmd->add_option("--heartbeat-fd", guard.heartbeat_fd)->required();
    guard_cmd->add_option("--hang-seconds", guard.hang_s)->check(diskwatch::seconds_between(0.1, 3600));
    guard_cmd->add_option("--cgroup2", guard.cgroup2_mount);
    guard_cmd->add_option("--json-out", guard.json_out);

    // Usage errors exit 2 with one line (docs/cli.md), whatever CLI11's own
    // code for the kind of error; a value echoed in it is cut to a readable length.
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        std::cerr << "ebpf-diskwatch: " << diskwatch::cut_for_message(e.what(), 300)
                  << " (see: ebpf-diskwatch --help)\n";
        return diskwatch::kExitUsage;
    }

    if (!*agent_cmd)
        diskwatch::restore_default_signal_handlers();
    diskwatch::setup_logging(g_verbose);
    libbpf_set_print(print_libbpf);

    if (*guard_cmd)
        return diskwatch::run_guard(guard);
    if (*doctor_cmd) {
        doctor.forced_hooks = parse_hooks_option(doctor_hooks);
        return diskwatch::run_doctor(doctor);
    }
    if (*top_cmd) {
        if (top_cmd->get_option("--replay")->count() > 0 && top.replay.empty()) {
            std::cerr << "ebpf-diskwatch top: --replay needs a time (\"2h ago\", \"14:00\", ...)\n";
            return diskwatch::kExitUsage;
        }
        top.forced_hooks = parse_hooks_option(top_hooks);
        if (auto grouping = diskwatch::parse_container_grouping(top_by)) {
            top.by = diskwatch::GroupBy::cgroup;  // the rows they are merged from
            top.container_grouping = grouping;
        } else {
            top.by = *diskwatch::parse_group_by(top_by);
        }
        if (top.json)
            top.batch = true;
        return diskwatch::run_top(top);
    }
    if (*explain_cmd)
        return diskwatch::run_explain(explain);
    if (*agent_cmd) {
        if (!agent_config.empty())
            agent.agent.config_path = agent_config;
        agent.forced_hooks = parse_hooks_option(agent_hooks);
        return diskwatch::run_agent(agent);
    }
    if (*check_config_cmd)
        return diskwatch::run_check_config(check_config_file);
    if (*status_cmd)
        return diskwatch::run_status(status);
    if (*release_cmd)
        return diskwatch::run_release(release);
    return diskwatch::kExitUsage;
}
