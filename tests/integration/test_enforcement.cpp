// The agent end to end (docs/policy.md, docs/events.md): real BPF programs,
// real writers on loop-mounted ext4 and in cgroup v2 children made by the
// test, real signals and cgroup files. Time bounds are generous: these prove
// behaviour; scripts/bench measures latency.
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "actions/pidfd.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;

long long file_size(const std::string &path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

bool is_event(const json &event, const std::string &type, int pid)
{
    return event.value("event", "") == type && event.contains("process") && event["process"].value("pid", 0) == pid;
}

std::string read_line(const std::string &path)
{
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// The process is alive and not stopped (state T).
bool running(pid_t pid)
{
    const char state = diskwatch::process_state(pid);
    return state != 0 && state != 'T' && state != 't' && state != 'Z';
}

}  // namespace

TEST_CASE("a flood is killed before its mount fills, a protected steady writer beside it lives",
          "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(384);
    AgentRun agent(PolicyYaml()
                       .interval("250ms")
                       .protect_comm("dw-steady")
                       .rule("flood")
                       .match("comm", {"dw-*"})
                       .match("mount", {disk.path()})
                       .when("20MiB/s", "1s")
                       .action("kill")
                       .set("kill_grace", "500ms"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    // Both write faster than the rule; only the unprotected one may die.
    auto steady = start_writer(disk.path() + "/steady.log", 60 * kMiB, "dw-steady", {"--rate", std::to_string(30 * kMiB)});
    const auto flood_start = std::chrono::steady_clock::now();
    auto flood = start_writer(disk.path() + "/flood.log", 1024 * kMiB, "dw-flood", {"--rate", std::to_string(64 * kMiB)});
    const auto flood_status = flood.wait(std::chrono::seconds(30));
    const double flood_lived_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - flood_start).count();
    INFO(agent.events_text());
    REQUIRE(flood_status);
    CHECK((*flood_status == 128 + SIGTERM || *flood_status == 128 + SIGKILL));
    // for (1 s) + 0.5 s is the goal on these machines; the test allows a slow, shared CI box.
    CHECK(flood_lived_s < 4.0);
    struct statvfs fs {};
    REQUIRE(::statvfs(disk.path().c_str(), &fs) == 0);
    CHECK(fs.f_bavail > 0);
    CHECK(file_size(disk.path() + "/flood.log") < 200 * kMiB);

    const auto steady_status = steady.wait(std::chrono::seconds(30));
    REQUIRE(steady_status);
    CHECK(*steady_status == 0);
    CHECK(file_size(disk.path() + "/steady.log") == 60 * kMiB);

    auto kill = agent.wait_for([&](const json &e) { return is_event(e, "action", flood.pid()) && e["action"] == "kill"; }, std::chrono::seconds(5));
    REQUIRE(kill);
    CHECK((*kill)["rule"] == "flood");
    CHECK((*kill)["mechanism"] == "pidfd_send_signal");
    CHECK((*kill)["dry_run"] == false);
    CHECK((*kill)["protected"] == false);
    CHECK((*kill)["process"]["comm"] == "dw-flood");
    CHECK((*kill)["mount"]["path"] == disk.path());
    CHECK((*kill)["mount"]["fstype"] == "ext4");
    CHECK((*kill)["mount"]["used_pct"].get<double>() > 0);
    auto runaway = agent.wait_for([&](const json &e) { return is_event(e, "runaway", flood.pid()); }, std::chrono::seconds(1));
    REQUIRE(runaway);
    CHECK((*runaway)["state"] == "started");
    CHECK((*runaway)["condition"] == "write_rate");
    CHECK((*runaway)["write_bps"].get<double>() >= 20.0 * kMiB);
    // The protected writer matched the rule too: its events say so, and nothing was done.
    auto spared = agent.wait_for([&](const json &e) { return is_event(e, "runaway", steady.pid()); }, std::chrono::seconds(1));
    REQUIRE(spared);
    CHECK((*spared)["protected"] == true);
    for (const auto &event : agent.events())
        if (is_event(event, "action", steady.pid())) {
            CHECK(event["protected"] == true);
            CHECK(event["mechanism"] == "none");
        }
    // One runaway event per state change, not one per interval.
    int flood_runaways = 0;
    for (const auto &event : agent.events())
        flood_runaways += is_event(event, "runaway", flood.pid()) && event["state"] == "started";
    CHECK(flood_runaways == 1);
    REQUIRE(agent.stop() == 0);
}

TEST_CASE("a writer that ignores SIGTERM gets SIGKILL after kill_grace", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(PolicyYaml()
                       .rule("stubborn")
                       .match("comm", {"dw-stubborn"})
                       .when("10MiB/s", "500ms")
                       .action("kill")
                       .set("kill_grace", "1s"));
    REQUIRE(agent.started());
    const auto start = std::chrono::steady_clock::now();
    auto writer = start_writer(disk.path() + "/s.log", 1024 * kMiB, "dw-stubborn",
                               {"--rate", std::to_string(32 * kMiB), "--ignore-sigterm", "1"});
    const auto status = writer.wait(std::chrono::seconds(30));
    const double lived_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(agent.events_text());
    REQUIRE(status);
    CHECK(*status == 128 + SIGKILL);
    // kill_grace after the detection (its 5 MiB budget within 500 ms is
    // crossed after ~0.2 s at 32 MiB/s): SIGTERM did not stop it.
    CHECK(lived_s >= 1.1);
    CHECK(lived_s < 6.0);
    // The agent writes the SIGKILL event after sending the signal, so the
    // writer's exit can be seen here before the event reaches the file.
    REQUIRE(agent.wait_for([&](const json &e) { return is_event(e, "action", writer.pid()) && e.value("signal", "") == "SIGKILL"; }, std::chrono::seconds(5)));
    std::vector<std::string> signals;
    for (const auto &event : agent.events())
        if (is_event(event, "action", writer.pid()))
            signals.push_back(event.value("signal", ""));
    CHECK(signals == std::vector<std::string>{"SIGTERM", "SIGKILL"});
}

TEST_CASE("a flood that renames itself mid-flood (a hostile name) is killed all the same, and its name reaches "
          "stderr escaped",
          "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(PolicyYaml()
                       .interval("100ms")
                       .rule("renamer")
                       .match("mount", {disk.path()})
                       .when("10MiB/s", "1s")
                       .action("kill")
                       .set("kill_grace", "0s"));
    REQUIRE(agent.started());
    // Renamed once the agent has seen it under its first name (12 MiB at 32 MiB/s: ~0.4 s).
    auto writer = start_writer(disk.path() + "/r.log", 1024 * kMiB, "dw-renamer",
                               {"--rate", std::to_string(32 * kMiB), "--rename-to", "\x1b[2J\nforged",
                                "--rename-after", std::to_string(12 * kMiB)});
    const auto status = writer.wait(std::chrono::seconds(30));
    INFO(agent.events_text());
    REQUIRE(status);
    CHECK(*status == 128 + SIGKILL);
    REQUIRE(agent.stop());
    INFO(agent.stderr_text());
    CHECK(agent.stderr_text().find('\x1b') == std::string::npos);
    CHECK(agent.stderr_text().find("\nforged") == std::string::npos);
}

TEST_CASE("a throttled writer holds its limit within 10% over 5 s, alive and progressing", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(throttle_policy("dw-throttled"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    const std::string file = disk.path() + "/throttled.log";
    auto writer = start_writer(file, 400 * kMiB, "dw-throttled", {"--pace", std::to_string(16 * kMiB)});
    auto throttle = agent.wait_for([&](const json &e) { return is_event(e, "action", writer.pid()) && e["action"] == "throttle"; }, std::chrono::seconds(10));
    INFO(agent.events_text());
    REQUIRE(throttle);
    CHECK((*throttle)["mechanism"] == "sigstop");
    CHECK((*throttle)["throttle_to_bps"].get<double>() == 4.0 * kMiB);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let the first allowance settle
    const long long before = file_size(file);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    const long long after = file_size(file);
    const double rate = static_cast<double>(after - before) / 5.0;
    INFO("held at " << rate / kMiB << " MiB/s");
    CHECK(rate >= 4.0 * kMiB * 0.9);
    CHECK(rate <= 4.0 * kMiB * 1.1);
    CHECK(::kill(writer.pid(), 0) == 0);  // alive
    // SIGTERM of the agent releases it: it runs at its own pace again.
    REQUIRE(agent.stop() == 0);
    auto release = agent.wait_for([&](const json &e) { return is_event(e, "action", writer.pid()) && e["action"] == "release"; }, std::chrono::seconds(1));
    REQUIRE(release);
    CHECK((*release)["reason"] == "agent stop");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(running(writer.pid()));
    const long long released_before = file_size(file);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CHECK(file_size(file) - released_before > 8 * kMiB);
}

TEST_CASE("a cgroup is throttled in the kernel, its writers stopped at their writes, and released when throttle_for ends",
          "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    Cgroup2Child cgroup("dw-freeze");
    AgentRun agent(PolicyYaml()
                       .rule("freeze")
                       .cgroup_scope()
                       .match("cgroup", {cgroup.relative_path()})
                       .when("8MiB/s", "500ms")
                       .action("throttle")
                       .set("throttle_to", "2MiB/s")
                       .set("throttle_for", "3s"));
    REQUIRE(agent.started());
    const std::string file = disk.path() + "/f.log";
    auto writer = start_writer(file, 400 * kMiB, "dw-freezer", {"--pace", std::to_string(16 * kMiB), "--cgroup", cgroup.path()});
    auto throttle = agent.wait_for([](const json &e) { return e.value("event", "") == "action" && e["action"] == "throttle"; }, std::chrono::seconds(10));
    INFO(agent.events_text());
    REQUIRE(throttle);
    CHECK((*throttle)["mechanism"] == "sigstop");
    CHECK((*throttle)["scope"] == "cgroup");
    CHECK((*throttle)["cgroup"]["path"] == cgroup.relative_path());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long long before = file_size(file);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const double rate = static_cast<double>(file_size(file) - before) / 2.0;
    INFO("held at " << rate / kMiB << " MiB/s");
    CHECK(rate >= 2.0 * kMiB * 0.8);
    CHECK(rate <= 2.0 * kMiB * 1.2);
    auto release = agent.wait_for([](const json &e) { return e.value("event", "") == "action" && e["action"] == "release"; }, std::chrono::seconds(5));
    REQUIRE(release);
    CHECK((*release)["reason"] == "throttle_for ended");
    CHECK((*release)["mechanism"] == "sigstop");
    CHECK((*release)["stops"].get<uint64_t>() > 0);
    CHECK(read_line(cgroup.path() + "/cgroup.freeze") == "0");  // never frozen
    CHECK(running(writer.pid()));
    // Continued, not left stopped: it writes on at its own pace.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (diskwatch::process_state(writer.pid()) == 'T' && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(diskwatch::process_state(writer.pid()) != 'T');
}

TEST_CASE("a cgroup of short-lived writers is caught at cgroup scope", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    Cgroup2Child cgroup("dw-enforce");
    AgentRun agent(PolicyYaml()
                       .rule("busy-cgroup")
                       .cgroup_scope()
                       .match("cgroup", {cgroup.relative_path()})
                       .when("12MiB/s", "1s")
                       .action("alert")
                       .rule("busy-process")
                       .match("cgroup", {cgroup.relative_path()})
                       .when("12MiB/s", "1s")
                       .action("alert"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    // 20 writers in sequence, each 1.5 MiB then exit, about every 75 ms: ~20 MiB/s for the
    // cgroup, and no process lives long enough to hold 12 MiB/s for a second.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    int spawned = 0;
    while (std::chrono::steady_clock::now() < until) {
        auto writer = start_writer(disk.path() + "/job-" + std::to_string(spawned++), 3 * kMiB / 2, "dw-job",
                                   {"--cgroup", cgroup.path()});
        REQUIRE(writer.wait(std::chrono::seconds(10)) == 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto caught = agent.wait_for([](const json &e) { return e.value("event", "") == "runaway" && e["rule"] == "busy-cgroup"; }, std::chrono::seconds(5));
    INFO(agent.events_text());
    REQUIRE(caught);
    CHECK((*caught)["scope"] == "cgroup");
    CHECK((*caught)["cgroup"]["path"] == cgroup.relative_path());
    CHECK((*caught)["cgroup"]["id"].get<uint64_t>() == cgroup.id());
    CHECK((*caught)["process"]["comm"] == "dw-job");
    auto alert = agent.wait_for([](const json &e) { return e.value("event", "") == "action" && e["rule"] == "busy-cgroup"; }, std::chrono::seconds(1));
    REQUIRE(alert);
    CHECK((*alert)["action"] == "alert");
    for (const auto &event : agent.events())
        CHECK(event.value("rule", "") != "busy-process");
    CHECK(spawned > 10);
}

TEST_CASE("cgroup scope kill uses cgroup.kill", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    Cgroup2Child cgroup("dw-kill");
    AgentRun agent(PolicyYaml()
                       .rule("kill-cgroup")
                       .cgroup_scope()
                       .match("cgroup", {cgroup.relative_path()})
                       .when("10MiB/s", "500ms")
                       .action("kill")
                       .set("kill_grace", "0s"));
    REQUIRE(agent.started());
    auto writer = start_writer(disk.path() + "/c.log", 1024 * kMiB, "dw-cg", {"--cgroup", cgroup.path(), "--rate", std::to_string(40 * kMiB)});
    auto status = writer.wait(std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(status);
    CHECK(*status == 128 + SIGKILL);
    auto kill = agent.wait_for([](const json &e) { return e.value("event", "") == "action" && e["action"] == "kill"; }, std::chrono::seconds(2));
    REQUIRE(kill);
    CHECK((*kill)["mechanism"] == "cgroup.kill");
    CHECK((*kill)["scope"] == "cgroup");
}

TEST_CASE("dry run reports every action and acts on nothing", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    AgentRun agent(PolicyYaml().rule("would-kill").match("comm", {"dw-dry"}).when("10MiB/s", "500ms").action("kill"),
                   {"--dry-run"});
    REQUIRE(agent.started());
    auto writer = start_writer(disk.path() + "/dry.log", 80 * kMiB, "dw-dry", {"--rate", std::to_string(40 * kMiB)});
    const auto status = writer.wait(std::chrono::seconds(30));
    INFO(agent.events_text());
    REQUIRE(status);
    CHECK(*status == 0);
    CHECK(file_size(disk.path() + "/dry.log") == 80 * kMiB);
    auto action = agent.wait_for([&](const json &e) { return is_event(e, "action", writer.pid()); }, std::chrono::seconds(2));
    REQUIRE(action);
    CHECK((*action)["action"] == "kill");
    CHECK((*action)["dry_run"] == true);
    CHECK((*action)["mechanism"] == "pidfd_send_signal");
    auto start = agent.wait_for([](const json &e) { return e.value("event", "") == "agent.start"; }, std::chrono::seconds(1));
    CHECK((*start)["dry_run"] == true);
}

TEST_CASE("SIGHUP reloads the policy and a bad one keeps the old running with an error event", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    AgentRun agent(PolicyYaml().rule("first").match("comm", {"dw-reload"}).when("1GiB/s"));
    REQUIRE(agent.started());
    agent.rewrite_policy(PolicyYaml().rule("second").match("comm", {"dw-reload"}).when("5MiB/s", "500ms"));
    agent.signal(SIGHUP);
    auto reloaded = agent.wait_for([](const json &e) { return e.value("event", "") == "policy.reload"; }, std::chrono::seconds(5));
    INFO(agent.events_text());
    REQUIRE(reloaded);
    CHECK((*reloaded)["ok"] == true);
    CHECK((*reloaded)["rules"][0]["name"] == "second");
    // A typo: refused, named, and "second" keeps running.
    agent.rewrite_policy("rules:\n  - name: third\n    when: {write_rte: 1MiB/s}\n");
    agent.signal(SIGHUP);
    auto refused = agent.wait_for([](const json &e) { return e.value("event", "") == "policy.reload" && e["ok"] == false; }, std::chrono::seconds(5));
    REQUIRE(refused);
    CHECK((*refused)["error"].get<std::string>() ==
          agent.policy_path() + ":3: rules.third.when.write_rte: unknown key (expected one of: write_rate, for, "
                                "growth_rate, written, within, eta_full, mount_usage_percent, any, all)");
    CHECK((*refused)["rules"][0]["name"] == "second");
    auto writer = start_writer(disk.path() + "/r.log", 40 * kMiB, "dw-reload", {"--rate", std::to_string(20 * kMiB)});
    REQUIRE(writer.wait(std::chrono::seconds(30)) == 0);
    auto runaway = agent.wait_for([&](const json &e) { return is_event(e, "runaway", writer.pid()); }, std::chrono::seconds(3));
    REQUIRE(runaway);
    CHECK((*runaway)["rule"] == "second");
}

TEST_CASE("check-config and the agent refuse bad policies naming file, line and key", "[enforcement][policy]")
{
    ScratchDir dir;
    const std::string path = dir.path() + "/bad.yaml";
    {
        std::ofstream out(path);
        out << "interval: 1s\nrules:\n  - name: r\n    when: {write_rate: 5MiB}\n";
    }
    ::chmod(path.c_str(), 0644);
    std::string output;
    CHECK(run({DW_BINARY, "check-config", path}, &output) == 1);
    CHECK(output.find(path + ":4: rules.r.when.write_rate: \"5MiB\" is not a rate") != std::string::npos);
    CHECK(run({DW_BINARY, "agent", "--config", path}, &output) == 1);
    CHECK(output.find(path + ":4: rules.r.when.write_rate") != std::string::npos);
    CHECK(run({DW_BINARY, "check-config", DW_EXAMPLES_DIR "/policy.yaml"}, &output) == 0);
    CHECK(output.find("3 rules") != std::string::npos);
    if (::geteuid() == 0) {
        ::chmod(path.c_str(), 0666);
        CHECK(run({DW_BINARY, "agent", "--config", path}, &output) == 1);
        CHECK(output.find("refused: writable by everyone") != std::string::npos);
    }
}

TEST_CASE("mount.usage and mount.eta name the mount and its top writers", "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    AgentRun agent(R"(mounts:
  usage_alert_percent: 30
  eta_alert: 1h
)");
    REQUIRE(agent.started());
    auto writer = start_writer(disk.path() + "/fill.log", 64 * kMiB, "dw-filler",
                               {"--rate", std::to_string(16 * kMiB), "--linger-ms", "1500"});
    auto usage = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "mount.usage" && e["mount"]["path"] == disk.path();
    }, std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(usage);
    CHECK((*usage)["state"] == "above");
    CHECK((*usage)["usage_alert_percent"] == 30.0);
    CHECK((*usage)["mount"]["used_pct"].get<double>() >= 30.0);
    CHECK((*usage)["mount"]["fstype"] == "ext4");
    CHECK((*usage)["mount"]["dev"] == disk.dev_string());
    REQUIRE((*usage)["top_writers"].size() >= 1);
    CHECK((*usage)["top_writers"][0]["pid"] == writer.pid());
    CHECK((*usage)["top_writers"][0]["comm"] == "dw-filler");
    CHECK((*usage)["top_writers"][0]["write_bps"].get<double>() > 0);
    auto eta = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "mount.eta" && e["mount"]["path"] == disk.path();
    }, std::chrono::seconds(10));
    REQUIRE(eta);
    CHECK((*eta)["state"] == "above");
    CHECK((*eta)["mount"]["eta_full_s"].get<double>() < 3600);
    REQUIRE((*eta)["top_writers"].size() >= 1);
    CHECK((*eta)["top_writers"][0]["pid"] == writer.pid());
    CHECK((*eta)["top_writers"][0]["growth_bps"].get<double>() > 0);
    // One event per crossing, not one per interval.
    int usage_events = 0;
    for (const auto &event : agent.events())
        usage_events += event.value("event", "") == "mount.usage" && event["mount"]["path"] == disk.path();
    CHECK(usage_events == 1);
    REQUIRE(writer.wait(std::chrono::seconds(30)) == 0);
}

TEST_CASE("without --config the built-in policy alerts on a mount above 80% and filling within an hour",
          "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(64);
    AgentRun agent("");
    REQUIRE(agent.started());
    auto start = agent.wait_for([](const json &e) { return e.value("event", "") == "agent.start"; }, std::chrono::seconds(1));
    CHECK((*start)["policy"] == "built-in default");
    CHECK((*start)["rules"].empty());
    CHECK((*start)["dry_run"] == false);
    auto writer = start_writer(disk.path() + "/fill.log", 52 * kMiB, "dw-default", {"--rate", std::to_string(16 * kMiB)});
    REQUIRE(writer.wait(std::chrono::seconds(30)) == 0);
    auto usage = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "mount.usage" && e["mount"]["path"] == disk.path();
    }, std::chrono::seconds(10));
    INFO(agent.events_text());
    REQUIRE(usage);
    CHECK((*usage)["usage_alert_percent"] == 80.0);
    CHECK((*usage)["mount"]["used_pct"].get<double>() >= 80.0);
    auto eta = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "mount.eta" && e["mount"]["path"] == disk.path();
    }, std::chrono::seconds(5));
    REQUIRE(eta);
    CHECK((*eta)["eta_alert_s"] == 3600.0);
    for (const auto &event : agent.events())
        CHECK(event.value("event", "") != "action");  // alert-only: it acts on nothing
}

TEST_CASE("after SIGKILL of the agent, a restarted one continues what the kernel left stopped, at both scopes",
          "[enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    Cgroup2Child cgroup("dw-reconcile");
    ScratchDir state;
    const std::string policy = PolicyYaml()
                                   .rule("stop-process")
                                   .match("comm", {"dw-stopped"})
                                   .when("4MiB/s", "250ms")
                                   .action("throttle")
                                   .set("throttle_to", "64KiB/s")
                                   .rule("stop-cgroup")
                                   .cgroup_scope()
                                   .match("cgroup", {cgroup.relative_path()})
                                   .when("4MiB/s", "250ms")
                                   .action("throttle")
                                   .set("throttle_to", "64KiB/s");
    auto process_writer = start_writer(disk.path() + "/p.log", 512 * kMiB, "dw-stopped", {"--pace", std::to_string(16 * kMiB)});
    auto cgroup_writer = start_writer(disk.path() + "/c.log", 512 * kMiB, "dw-member",
                                      {"--pace", std::to_string(16 * kMiB), "--cgroup", cgroup.path()});
    {
        AgentRun first(policy, {}, state.path());
        REQUIRE(first.started());
        REQUIRE(first.wait_for([&](const json &e) { return is_event(e, "action", process_writer.pid()) && e["action"] == "throttle"; }, std::chrono::seconds(10)));
        auto member_throttle = first.wait_for([](const json &e) { return e.value("event", "") == "action" && e["rule"] == "stop-cgroup"; }, std::chrono::seconds(10));
        INFO(first.events_text());
        REQUIRE(member_throttle);
        CHECK((*member_throttle)["mechanism"] == "sigstop");
        // At 64 KiB/s against 16 MiB/s both spend nearly all their time paused.
        // Stop the agent before looking, so that it cannot resume one of them
        // between the look and the crash; look again if it just had.
        const auto both_paused = [&] {
            return diskwatch::process_state(process_writer.pid()) == 'T' && diskwatch::process_state(cgroup_writer.pid()) == 'T';
        };
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (true) {
            first.signal(SIGSTOP);
            if (both_paused() || std::chrono::steady_clock::now() > deadline)
                break;
            first.signal(SIGCONT);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        // The first layer, the guard that releases the moment the agent dies
        // (test_agent_lifecycle.cpp), goes first, as it does with the agent in
        // a container: this tests the second, the restart's reconcile.
        const pid_t guard = first.guard_pid();
        REQUIRE(guard > 0);
        REQUIRE(::kill(guard, SIGKILL) == 0);
        first.signal(SIGKILL);
        REQUIRE(first.stop(std::chrono::seconds(5)));
        // The crash left them paused.
        CHECK(diskwatch::process_state(process_writer.pid()) == 'T');
        CHECK(diskwatch::process_state(cgroup_writer.pid()) == 'T');
    }
    // A restart with a policy that no longer throttles: both are released.
    AgentRun second("rules: []\n", {}, state.path());
    INFO(second.stderr_text());
    REQUIRE(second.started());
    INFO(second.events_text());
    auto start = second.wait_for([](const json &e) { return e.value("event", "") == "agent.start"; }, std::chrono::seconds(1));
    CHECK((*start)["reconciled"] == 2);
    CHECK(running(process_writer.pid()));
    CHECK(running(cgroup_writer.pid()));
    auto released = second.wait_for([&](const json &e) { return is_event(e, "action", process_writer.pid()) && e["action"] == "release"; }, std::chrono::seconds(1));
    REQUIRE(released);
    CHECK(released->value("reason", "").rfind("reconcile", 0) == 0);
    auto continued = second.wait_for([&](const json &e) { return is_event(e, "action", cgroup_writer.pid()) && e["action"] == "release"; }, std::chrono::seconds(1));
    REQUIRE(continued);
    CHECK((*continued)["mechanism"] == "sigstop");
    CHECK(continued->value("reason", "").rfind("reconcile", 0) == 0);
}

TEST_CASE("the shipped example policy, once dry_run is false, kills a flood named exactly Suricata-Main",
          "[enforcement][bpf][example]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    // The example as shipped (it acts on nothing until dry_run is false),
    // with this test's disk added to its log writer's mounts.
    std::ifstream example(DW_EXAMPLES_DIR "/policy.yaml");
    REQUIRE(example);
    std::string policy((std::istreambuf_iterator<char>(example)), std::istreambuf_iterator<char>());
    const auto replace = [&](const std::string &from, const std::string &to) {
        const auto at = policy.find(from);
        REQUIRE(at != std::string::npos);
        policy.replace(at, from.size(), to);
    };
    replace("dry_run: true", "dry_run: false");
    replace("mount: [\"/var/log\", \"/\"]", "mount: [\"/var/log\", \"/\", \"" + disk.path() + "\"]");
    AgentRun agent(policy);
    REQUIRE(agent.started());
    // Suricata's main thread names the process: "Suricata-Main", capital S.
    auto flood = start_writer(disk.path() + "/eve.json", 400 * kMiB, "Suricata-Main", {"--rate", std::to_string(128 * kMiB)});
    auto kill = agent.wait_for([&](const json &e) { return is_event(e, "action", flood.pid()) && e["action"] == "kill"; },
                               std::chrono::seconds(15));
    INFO(agent.events_text());
    REQUIRE(kill);
    CHECK((*kill)["rule"] == "runaway-log-writer");
    CHECK((*kill)["process"]["comm"] == "Suricata-Main");
    CHECK((*kill)["dry_run"] == false);
    const auto status = flood.wait(std::chrono::seconds(10));
    REQUIRE(status);
    CHECK((*status == 128 + SIGTERM || *status == 128 + SIGKILL));
}
