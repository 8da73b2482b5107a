// The interactive view in a real terminal: tmux runs `ebpf-diskwatch top`,
// send-keys types, capture-pane reads the screen.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;

namespace {

const std::string kTmux = "/usr/bin/tmux";

struct TmuxSession {
    std::string name = "dw-test-" + std::to_string(::getpid());
    explicit TmuxSession(const std::string &command)
    {
        REQUIRE(run({kTmux, "new-session", "-d", "-s", name, "-x", "160", "-y", "40", command}) == 0);
    }
    ~TmuxSession() { run({kTmux, "kill-session", "-t", name}); }
    std::string screen() const
    {
        std::string text;
        run({kTmux, "capture-pane", "-p", "-t", name}, &text);
        return text;
    }
    void keys(const std::string &keys) const { run({kTmux, "send-keys", "-t", name, keys}); }
    bool alive() const { return run({kTmux, "has-session", "-t", name}) == 0; }
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
