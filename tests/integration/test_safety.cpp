// The enforcer's safety habits against the real agent (docs/policy.md,
// *Safety*; docs/control.md; issue 16): real writers on a loop-mounted ext4,
// the real CLI on the real control socket.
#include <signal.h>
#include <unistd.h>

#include <chrono>
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
