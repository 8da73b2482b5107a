// A tmux of the test's own, for the live view's tests: tmux runs
// `ebpf-diskwatch top`, send-keys types, capture-pane reads the screen.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>

#include "support/scratch.h"
#include "support/spawn.h"

namespace diskwatch::test {

inline const std::string kTmux = "/usr/bin/tmux";

// A tmux server of the test's own (-S, its socket in a scratch directory
// removed with it): the default server may hold another test binary's
// sessions, and the stale-fixture sweep kills a killed binary's server with
// all it runs.
struct TmuxSession {
    ScratchDir dir;
    std::string socket = dir.path() + "/tmux.sock";
    std::string name = "dw-test-" + std::to_string(::getpid());
    // Fails (never skips) when tmux cannot run, under CI=true as anywhere.
    explicit TmuxSession(const std::string &command, int width = 160, int height = 40)
    {
        REQUIRE(run({kTmux, "-S", socket, "new-session", "-d", "-s", name, "-x", std::to_string(width), "-y",
                     std::to_string(height), command}) == 0);
    }
    ~TmuxSession() { run({kTmux, "-S", socket, "kill-session", "-t", name}); }
    std::string screen() const
    {
        std::string text;
        run({kTmux, "-S", socket, "capture-pane", "-p", "-t", name}, &text);
        return text;
    }
    // The screen with wrapped lines joined (-J): a line longer than the pane
    // is one that wrapped.
    std::string joined_screen() const
    {
        std::string text;
        run({kTmux, "-S", socket, "capture-pane", "-p", "-J", "-t", name}, &text);
        return text;
    }
    void keys(const std::string &keys) const { run({kTmux, "-S", socket, "send-keys", "-t", name, keys}); }
    void resize(int width, int height) const
    {
        run({kTmux, "-S", socket, "resize-window", "-t", name, "-x", std::to_string(width), "-y",
             std::to_string(height)});
    }
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

// The screen line that holds `needle` (empty when none).
inline std::string line_with(const std::string &screen, const std::string &needle)
{
    const size_t at = screen.find(needle);
    if (at == std::string::npos)
        return "";
    const size_t start = screen.rfind('\n', at);
    const size_t end = screen.find('\n', at);
    return screen.substr(start == std::string::npos ? 0 : start + 1,
                         end == std::string::npos ? std::string::npos : end - (start == std::string::npos ? 0 : start + 1));
}

}  // namespace diskwatch::test
