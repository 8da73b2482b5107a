// The enforcer's safety habits against the real agent (docs/policy.md,
// *Safety*; docs/control.md; issue 16): real writers on a loop-mounted ext4,
// the real CLI on the real control socket.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "actions/pidfd.h"
#include "control/control_client.h"
#include "control/control_protocol.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;

bool about(const json &event, const std::string &type, pid_t pid)
{
    return event.value("event", "") == type && event.contains("process") && event["process"].value("pid", 0) == pid;
}

double steady_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST_CASE("release PID --for: a throttled writer still over its rule is not throttled again until the snooze ends",
          "[enforcement][bpf][safety]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(throttle_policy("dw-snoozed"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    // 16 MiB/s against "8 MiB/s for 500 ms": the rule holds all along.
    auto writer = start_writer(disk.path() + "/snoozed", 400 * kMiB, "dw-snoozed", {"--pace", std::to_string(16 * kMiB)});
    const auto throttled = agent.wait_for(
        [&](const json &e) { return about(e, "action", writer.pid()) && e["action"] == "throttle"; },
        std::chrono::seconds(15));
    INFO(agent.events_text());
    REQUIRE(throttled);

    auto release = ChildProcess::start({DW_BINARY, "release", std::to_string(writer.pid()), "--for", "4s",
                                        "--control-socket", agent.state_dir() + "/control.sock"});
    const auto release_status = release.wait(std::chrono::seconds(30));
    INFO(release.err());
    REQUIRE(release_status == 0);
    const double released_at = steady_s();
    CHECK_THAT(release.out(), Catch::Contains("released " + std::to_string(writer.pid()) + "; not acted on again for 4s"));
    const auto released = agent.wait_for(
        [&](const json &e) { return about(e, "action", writer.pid()) && e["action"] == "release"; },
        std::chrono::seconds(5));
    REQUIRE(released);
    CHECK((*released)["snooze_s"] == 4.0);
    CHECK((*released)["reason"] == "requested");
    // status lists it while the snooze runs (docs/control.md).
    std::string error;
    const auto status = diskwatch::control::send_request(agent.state_dir() + "/control.sock", {{"cmd", "status"}},
                                                         std::chrono::seconds(10), &error);
    INFO(error);
    REQUIRE(status);
    REQUIRE(status->at("snoozed").size() == 1);
    CHECK(status->at("snoozed")[0]["target"] == "process:" + std::to_string(writer.pid()));
    CHECK(status->at("snoozed")[0]["until"] == (*released)["snoozed_until"]);
    CHECK(status->at("snoozed")[0]["for_s"].get<double>() <= 4.0);
    // The rule still holds: the agent says once that it is snoozed, and does nothing.
    const auto snoozed = agent.wait_for(
        [&](const json &e) {
            return about(e, "action", writer.pid()) && e["action"] == "throttle" && e.contains("snoozed_until");
        },
        std::chrono::seconds(5));
    REQUIRE(snoozed);
    CHECK((*snoozed)["mechanism"] == "none");
    CHECK((*snoozed)["snoozed_until"] == (*released)["snoozed_until"]);
    // Throttled again only once the snooze is over, and never stopped before.
    bool stopped_while_snoozed = false;
    while (steady_s() - released_at < 3.5) {
        const char state = diskwatch::process_state(writer.pid());
        stopped_while_snoozed = stopped_while_snoozed || state == 'T';
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK_FALSE(stopped_while_snoozed);
    const auto again = agent.wait_for(
        [&](const json &e) {
            return about(e, "action", writer.pid()) && e["action"] == "throttle" && e["ts"] != (*throttled)["ts"] &&
                   !e.contains("snoozed_until");
        },
        std::chrono::seconds(10));
    REQUIRE(again);
    CHECK(steady_s() - released_at >= 3.9);
    CHECK(count_events(agent.events(), "action") >= 4);
}

TEST_CASE("before SIGKILL the agent re-checks: a writer that stopped writing at SIGTERM is spared, one that writes on "
          "is killed",
          "[enforcement][bpf][safety]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(flood_kill_policy(PolicyYaml(), "dw-rc-*", disk.path(), "1500ms"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    // Both ignore SIGTERM's default: one writes on, one stops writing and lingers.
    auto stubborn = start_writer(disk.path() + "/stubborn", 400 * kMiB, "dw-rc-stubborn",
                                 {"--rate", std::to_string(40 * kMiB), "--ignore-sigterm", "1"});
    auto winding = start_writer(disk.path() + "/winding", 400 * kMiB, "dw-rc-winding",
                                {"--rate", std::to_string(40 * kMiB), "--sigterm-pause", "1"});
    const auto stubborn_kill = agent.wait_for(
        [&](const json &e) { return about(e, "action", stubborn.pid()) && e.value("signal", "") == "SIGKILL"; },
        std::chrono::seconds(20));
    const auto winding_spared = agent.wait_for(
        [&](const json &e) { return about(e, "action", winding.pid()) && e.value("signal", "") == "none"; },
        std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(stubborn_kill);
    CHECK_THAT((*stubborn_kill)["reason"].get<std::string>(), Catch::Contains("still writing after SIGTERM"));
    const auto stubborn_status = stubborn.wait(std::chrono::seconds(10));
    REQUIRE(stubborn_status);
    CHECK(*stubborn_status == 128 + SIGKILL);
    REQUIRE(winding_spared);
    CHECK_THAT((*winding_spared)["reason"].get<std::string>(), Catch::Contains("re-checked before SIGKILL"));
    // It is still there, and is never SIGKILLed while it writes nothing.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    CHECK(diskwatch::process_state(winding.pid()) != 0);
    CHECK(diskwatch::process_state(winding.pid()) != 'Z');
    for (const auto &event : agent.events())
        CHECK_FALSE((about(event, "action", winding.pid()) && event.value("signal", "") == "SIGKILL"));
}

TEST_CASE("safety.kill_limit: the kill past the host's limit is an alert that says so, and the writer lives",
          "[enforcement][bpf][safety]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    const std::string policy =
        "safety:\n  kill_limit: 1\n  kill_window: 10m\n" + flood_kill_policy(PolicyYaml(), "dw-kl-*", disk.path()).str();
    AgentRun agent(policy);
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    auto first = start_writer(disk.path() + "/first", 400 * kMiB, "dw-kl-first", {"--rate", std::to_string(40 * kMiB)});
    const auto killed = agent.wait_for(
        [&](const json &e) { return about(e, "action", first.pid()) && e["action"] == "kill"; }, std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(killed);
    auto second = start_writer(disk.path() + "/second", 120 * kMiB, "dw-kl-second", {"--rate", std::to_string(40 * kMiB)});
    const auto alert = agent.wait_for(
        [&](const json &e) { return about(e, "action", second.pid()) && e["action"] == "alert"; },
        std::chrono::seconds(20));
    REQUIRE(alert);
    CHECK((*alert)["instead_of"] == "kill");
    CHECK_THAT((*alert)["reason"].get<std::string>(), Catch::Contains("safety.kill_limit: 1 kills within 600 s"));
    const auto status = second.wait(std::chrono::seconds(30));  // it writes all it meant to
    REQUIRE(status);
    CHECK(*status == 0);
    for (const auto &event : agent.events())
        CHECK_FALSE((about(event, "action", second.pid()) && event["action"] == "kill"));
}

TEST_CASE("a kill rule's pre_kill hook runs before the SIGTERM, its exit status and output in the kill event",
          "[enforcement][bpf][safety]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(flood_kill_policy(PolicyYaml(), "dw-hook-*", disk.path())
                       .set("pre_kill", "[/usr/bin/env]")
                       .set("pre_kill_timeout", "3s"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    auto flood = start_writer(disk.path() + "/flood", 400 * kMiB, "dw-hook-flood", {"--rate", std::to_string(40 * kMiB)});
    const auto kill = agent.wait_for(
        [&](const json &e) { return about(e, "action", flood.pid()) && e["action"] == "kill"; }, std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(kill);
    CHECK((*kill)["signal"] == "SIGTERM");
    REQUIRE((*kill).contains("pre_kill"));
    CHECK((*kill)["pre_kill"]["exit_status"] == 0);
    CHECK((*kill)["pre_kill"]["timed_out"] == false);
    const std::string output = (*kill)["pre_kill"]["output"];
    CHECK_THAT(output, Catch::Contains("DW_PID=" + std::to_string(flood.pid()) + "\n"));
    CHECK_THAT(output, Catch::Contains("DW_RULE=flood\n"));
    CHECK_THAT(output, Catch::Contains("DW_COMM=dw-hook-flood\n"));
    const auto status = flood.wait(std::chrono::seconds(10));
    REQUIRE(status);
    CHECK((*status == 128 + SIGTERM || *status == 128 + SIGKILL));
}

TEST_CASE("escalate_after: a writer that stays over its rule's rate under the throttle is killed", "[enforcement][bpf][safety]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(PolicyYaml()
                       .interval("250ms")
                       .rule("slow-then-kill")
                       .match("comm", {"dw-esc-*"})
                       .match("mount", {disk.path()})
                       .when("8MiB/s", "500ms")
                       .action("throttle")
                       .set("throttle_to", "2MiB/s")
                       .set("throttle_for", "1m")
                       .set("escalate_after", "3s")
                       .set("kill_grace", "500ms"));
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    // It wants 32 MiB/s: held to 2, it is stopped ~94% of the time.
    auto writer = start_writer(disk.path() + "/esc", 400 * kMiB, "dw-esc-flood", {"--pace", std::to_string(32 * kMiB)});
    const auto throttled = agent.wait_for(
        [&](const json &e) { return about(e, "action", writer.pid()) && e["action"] == "throttle"; },
        std::chrono::seconds(15));
    INFO(agent.events_text());
    REQUIRE(throttled);
    const double throttled_at = steady_s();
    const auto kill = agent.wait_for(
        [&](const json &e) { return about(e, "action", writer.pid()) && e["action"] == "kill"; }, std::chrono::seconds(15));
    REQUIRE(kill);
    CHECK(steady_s() - throttled_at >= 2.5);
    CHECK((*kill)["escalated"] == true);
    CHECK((*kill)["condition"] == "escalate_after");
    CHECK((*kill)["stopped_fraction"].get<double>() > 0.6);
    CHECK_THAT((*kill)["reason"].get<std::string>(), Catch::Contains("over the rule's 8.0 MiB/s"));
    const auto status = writer.wait(std::chrono::seconds(10));
    REQUIRE(status);
    CHECK((*status == 128 + SIGTERM || *status == 128 + SIGKILL));
}

TEST_CASE("a cgroup rule's prefer decides whom the last kill under the kill limit goes to, and omit is never acted on",
          "[enforcement][bpf][safety]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    Cgroup2Child plain("dw-safety-plain");
    Cgroup2Child preferred("dw-safety-preferred");
    Cgroup2Child omitted("dw-safety-omitted");
    // All three hold at the same evaluation: when the mount crosses 50% (the
    // test fills it), having written a MiB. One kill is left in the window.
    std::string policy = PolicyYaml()
                             .interval("250ms")
                             .rule("full-disk")
                             .cgroup_scope()
                             .match("cgroup", {plain.relative_path(), preferred.relative_path(), omitted.relative_path()})
                             .match("mount", {disk.path()})
                             .set("when", "{all: [{written: 1MiB}, {mount_usage_percent: 50}]}")
                             .action("kill")
                             .set("kill_grace", "500ms")
                             .set("prefer", "[\"" + preferred.relative_path() + "\"]")
                             .set("omit", "[\"" + omitted.relative_path() + "\"]");
    policy = "safety:\n  kill_limit: 1\n  kill_window: 10m\n" + policy;
    AgentRun agent(policy);
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    const auto writer = [&](const Cgroup2Child &cgroup, const std::string &name) {
        return start_writer(disk.path() + "/" + name, 100 * kMiB, "dw-" + name,
                            {"--pace", std::to_string(2 * kMiB), "--cgroup", cgroup.path()});
    };
    // The plain one writes fastest: the largest writer would go first without prefer.
    auto plain_writer = start_writer(disk.path() + "/plain", 100 * kMiB, "dw-plain",
                                     {"--pace", std::to_string(4 * kMiB), "--cgroup", plain.path()});
    auto preferred_writer = writer(preferred, "preferred");
    auto omitted_writer = writer(omitted, "omitted");
    std::this_thread::sleep_for(std::chrono::seconds(2));  // a MiB each, and more
    {
        const int fd = ::open((disk.path() + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        CHECK(::posix_fallocate(fd, 0, 300 * kMiB) == 0);
        ::close(fd);
    }
    const auto kill = agent.wait_for(
        [&](const json &e) { return e.value("event", "") == "action" && e["action"] == "kill"; }, std::chrono::seconds(15));
    INFO(agent.events_text());
    REQUIRE(kill);
    CHECK((*kill)["cgroup"]["path"] == preferred.relative_path());
    const auto alert = agent.wait_for(
        [&](const json &e) { return e.value("event", "") == "action" && e.value("instead_of", "") == "kill"; },
        std::chrono::seconds(5));
    REQUIRE(alert);
    CHECK((*alert)["cgroup"]["path"] == plain.relative_path());
    const auto omit = agent.wait_for(
        [&](const json &e) { return e.value("event", "") == "action" && e.value("omitted", false); },
        std::chrono::seconds(5));
    REQUIRE(omit);
    CHECK((*omit)["cgroup"]["path"] == omitted.relative_path());
    const auto status = preferred_writer.wait(std::chrono::seconds(10));
    REQUIRE(status);
    CHECK((*status == 128 + SIGTERM || *status == 128 + SIGKILL));
    for (const pid_t spared : {plain_writer.pid(), omitted_writer.pid()}) {
        const char state = diskwatch::process_state(spared);
        CHECK((state != 0 && state != 'Z'));  // alive: an alert, and an omit
    }
}

TEST_CASE("an operator's throttle from top never shields a writer from the policy: a kill rule that holds takes over",
          "[enforcement][bpf][safety][act]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(PolicyYaml()
                       .interval("250ms")
                       .rule("zk-kill")
                       .match("comm", {"dw-zk-now"})
                       .when("1MiB/s", "500ms")
                       .action("kill")
                       .set("kill_grace", "500ms"));
    REQUIRE(agent.started());
    // Writes 4 MiB/s as dw-zk-pre (no rule), then renames itself into the kill rule's reach.
    auto writer = start_writer(disk.path() + "/zk.log", 300LL << 20, "dw-zk-pre",
                               {"--rate", std::to_string(4 << 20), "--rename-to", "dw-zk-now", "--rename-after",
                                std::to_string(16 << 20)});
    // Throttled from top at a rate that holds nothing back, before the rename.
    const std::string socket = agent.state_dir() + "/control.sock";
    std::optional<json> answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
        std::string error;
        answer = diskwatch::control::send_request(
            socket, diskwatch::control::act_request("throttle", std::to_string(writer.pid()), 1099511627776.0),
            std::chrono::seconds(10), &error);
        if (answer && answer->value("ok", false))
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // not counted yet: asked again
    }
    REQUIRE(answer);
    INFO(answer->dump());
    REQUIRE(answer->value("ok", false));
    // After the rename the rule holds: the operator's throttle is released, and the rule kills.
    auto superseded = agent.wait_for([&](const json &e) {
        return e.value("action", "") == "release" && e.value("reason", "") == "superseded by rule zk-kill";
    }, std::chrono::seconds(20));
    CHECK(superseded);
    auto killed = agent.wait_for([&](const json &e) {
        return e.value("action", "") == "kill" && e.value("rule", "") == "zk-kill";
    }, std::chrono::seconds(10));
    REQUIRE(killed);
    CHECK(writer.wait(std::chrono::seconds(10)).has_value());
}
