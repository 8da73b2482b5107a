// The interactive view in a real terminal: tmux runs `ebpf-diskwatch top`,
// send-keys types, capture-pane reads the screen.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;

namespace {

const std::string kTmux = "/usr/bin/tmux";

// A tmux server of the test's own (-S, its socket in a scratch directory
// removed with it): the default server may hold another test binary's
// sessions, and the stale-fixture sweep kills a killed binary's server with
// all it runs.
struct TmuxSession {
    ScratchDir dir;
    std::string socket = dir.path() + "/tmux.sock";
    std::string name = "dw-test-" + std::to_string(::getpid());
    explicit TmuxSession(const std::string &command)
    {
        REQUIRE(run({kTmux, "-S", socket, "new-session", "-d", "-s", name, "-x", "160", "-y", "40", command}) == 0);
    }
    ~TmuxSession() { run({kTmux, "-S", socket, "kill-session", "-t", name}); }
    std::string screen() const
    {
        std::string text;
        run({kTmux, "-S", socket, "capture-pane", "-p", "-t", name}, &text);
        return text;
    }
    void keys(const std::string &keys) const { run({kTmux, "-S", socket, "send-keys", "-t", name, keys}); }
    bool alive() const { return run({kTmux, "-S", socket, "has-session", "-t", name}) == 0; }
    // Polls the screen until `needle` shows up.
    bool wait_for(const std::string &needle, std::chrono::seconds timeout) const
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (screen().find(needle) != std::string::npos)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        return false;
    }
};

}  // namespace

TEST_CASE("the live view shows a writer, its mount's fill bar, regroups on keys and quits on q",
          "[top][interactive][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    // `; sleep` keeps the pane open after top exits, so we can tell a clean quit from a crash.
    TmuxSession tmux(std::string(DW_BINARY) + " top -d 1 -a; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("PID", std::chrono::seconds(30)));

    run_writer({"--mode", "write", "--file", disk.path() + "/live", "--bytes", std::to_string(48 << 20), "--comm",
                "live-writer"});
    INFO(tmux.screen());
    CHECK(tmux.wait_for("live-writer", std::chrono::seconds(10)));
    CHECK(tmux.wait_for(disk.path(), std::chrono::seconds(5)));  // mount header with its fill bar

    tmux.keys("m");
    CHECK(tmux.wait_for("by mount", std::chrono::seconds(5)));
    tmux.keys("h");
    CHECK(tmux.wait_for("any key returns", std::chrono::seconds(5)));
    tmux.keys("x");
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}

namespace {

// The screen line that holds `needle` (empty when none).
std::string line_with(const std::string &screen, const std::string &needle)
{
    const size_t at = screen.find(needle);
    if (at == std::string::npos)
        return "";
    const size_t start = screen.rfind('\n', at);
    const size_t end = screen.find('\n', at);
    return screen.substr(start == std::string::npos ? 0 : start + 1,
                         end == std::string::npos ? std::string::npos : end - (start == std::string::npos ? 0 : start + 1));
}

}  // namespace

TEST_CASE("attached to an agent, the live view marks the throttled row, draws its history and filters on /",
          "[top][interactive][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(throttle_policy("dw-marked"));
    REQUIRE(agent.started());
    // A throttled writer that keeps writing, and a bystander that does not match the rule.
    auto marked = start_writer(disk.path() + "/marked.log", 400LL << 20, "dw-marked",
                               {"--pace", std::to_string(16 << 20)});
    auto bystander = start_writer(disk.path() + "/other.log", 64LL << 20, "dw-bystander",
                                  {"--rate", std::to_string(1 << 20)});
    REQUIRE(agent.wait_for([](const nlohmann::json &e) {
        return e.value("event", "") == "action" && e.value("action", "") == "throttle";
    }, std::chrono::seconds(15)));

    TmuxSession tmux(std::string(DW_BINARY) + " top -d 1 -a --control-socket " + agent.state_dir() +
                     "/control.sock; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("agent " + std::to_string(agent.pid()), std::chrono::seconds(30)));  // the header names the source
    INFO(tmux.screen());
    REQUIRE(tmux.wait_for("dw-bystander", std::chrono::seconds(10)));
    REQUIRE(tmux.wait_for("throttled", std::chrono::seconds(10)));
    CHECK(tmux.wait_for("HISTORY", std::chrono::seconds(2)));
    std::this_thread::sleep_for(std::chrono::seconds(3));  // a few refreshes of history
    const std::string screen = tmux.screen();
    INFO(screen);
    const std::string marked_line = line_with(screen, "dw-marked");
    CHECK(marked_line.find("throttled") != std::string::npos);
    CHECK(line_with(screen, "dw-bystander").find("throttled") == std::string::npos);
    CHECK(marked_line.find_first_of(".:-=+*#@") != std::string::npos);  // its sparkline

    tmux.keys("/");
    tmux.keys("marked");
    CHECK(tmux.wait_for("filter: marked_", std::chrono::seconds(5)));
    tmux.keys("Enter");
    CHECK(tmux.wait_for("filter: marked ", std::chrono::seconds(5)));
    // Only the matching row is left after the next redraw.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline && tmux.screen().find("dw-bystander") != std::string::npos)
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    INFO(tmux.screen());
    CHECK(tmux.screen().find("dw-bystander") == std::string::npos);
    CHECK(tmux.screen().find("dw-marked") != std::string::npos);
    tmux.keys("\\");
    CHECK(tmux.wait_for("dw-bystander", std::chrono::seconds(5)));

    tmux.keys("?");
    CHECK(tmux.wait_for("filter rows by name", std::chrono::seconds(5)));
    tmux.keys("x");
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}
