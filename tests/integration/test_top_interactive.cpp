// The interactive view in a real terminal: tmux runs `ebpf-diskwatch top`,
// send-keys types, capture-pane reads the screen.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/tmux_session.h"
#include "support/top_run.h"

using namespace diskwatch::test;

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
    tmux.keys("s");
    tmux.keys("s");
    CHECK(tmux.wait_for("sort growth", std::chrono::seconds(5)));
    tmux.keys("r");
    CHECK(tmux.wait_for("sort growth (reversed)", std::chrono::seconds(5)));
    tmux.keys("h");
    CHECK(tmux.wait_for("any key returns", std::chrono::seconds(5)));
    tmux.keys("x");
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}

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

namespace {

std::vector<std::string> screen_lines(const std::string &screen)
{
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < screen.size()) {
        size_t end = screen.find('\n', start);
        if (end == std::string::npos)
            end = screen.size();
        lines.push_back(screen.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// The columns `text` takes: its UTF-8 characters (continuation bytes take
// none). The view draws ASCII, and in a UTF-8 locale the sparkline's blocks,
// each one column wide.
size_t columns(const std::string &text)
{
    return static_cast<size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The longest line of the screen, in columns, trailing blanks left out.
size_t widest_line(const std::string &screen)
{
    size_t widest = 0;
    for (const auto &line : screen_lines(screen)) {
        size_t end = line.find_last_not_of(' ');
        widest = std::max(widest, end == std::string::npos ? 0 : columns(line.substr(0, end + 1)));
    }
    return widest;
}

// The file line under the row of `comm` (empty when there is none).
std::string file_line_of(const std::string &screen, const std::string &comm)
{
    const auto lines = screen_lines(screen);
    for (size_t i = 0; i + 1 < lines.size(); ++i)
        if (lines[i].find(comm) != std::string::npos)
            return lines[i + 1].find("file ") != std::string::npos ? lines[i + 1] : "";
    return "";
}

// Polls until `check` holds on the screen.
bool screen_until(const TmuxSession &tmux, const std::function<bool(const std::string &)> &check,
                  std::chrono::seconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (check(tmux.screen()))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
}

// How long after Esc the pane says top has exited (polled every 20 ms; 5 s at most).
std::chrono::milliseconds time_to_quit_on_escape(const TmuxSession &tmux)
{
    const auto pressed = std::chrono::steady_clock::now();
    tmux.keys("Escape");
    while (std::chrono::steady_clock::now() - pressed < std::chrono::seconds(5)) {
        if (tmux.screen().find("top-exited-0") != std::string::npos)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - pressed);
}

}  // namespace

TEST_CASE("the live view fits 80x24, 120x40 and 200x50: paths shortened in the middle, full in kept, Esc quits",
          "[top][interactive][width][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    // A path as long as a container's: both its ends must show.
    const std::string hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const std::string directory = disk.path() + "/overlay2/" + hex + "/merged/var/log/app";
    std::filesystem::create_directories(directory);
    const std::string file = directory + "/eve-json-long.log";
    auto writer = start_writer(file, 200LL << 20, "dw-longpath", {"--rate", std::to_string(1 << 20)});
    // A file deleted while its writer still writes it.
    auto ghost = start_writer(disk.path() + "/ghost.log", 200LL << 20, "dw-ghost",
                              {"--rate", std::to_string(256 << 10), "--unlink-after-open", "1"});
    // The mount as the view shows it ends with the loop directory's random tail.
    const std::string mount_tail = disk.path().substr(disk.path().size() - 10);

    for (const auto &[width, height] : {std::pair{80, 24}, std::pair{120, 40}, std::pair{200, 50}}) {
        INFO("terminal " << width << "x" << height);
        TmuxSession tmux(std::string(DW_BINARY) + " top -d 1; echo top-exited-$?; sleep 30", width, height);
        REQUIRE(tmux.wait_for("PID", std::chrono::seconds(30)));
        // The path arrives with the refresh that names the writer's files.
        const bool shown = screen_until(tmux, [&](const std::string &screen) {
            return file_line_of(screen, "dw-longpath").find("eve-json-long.log") != std::string::npos &&
                   file_line_of(screen, "dw-ghost").find("DELETED") != std::string::npos;
        }, std::chrono::seconds(15));
        const std::string screen = tmux.screen();
        INFO(screen);
        CHECK(shown);
        // Nothing wraps: no line, wrapped lines joined, is wider than the pane.
        CHECK(widest_line(tmux.joined_screen()) <= static_cast<size_t>(width));
        for (const auto &line : screen_lines(screen))
            CHECK(columns(line) <= static_cast<size_t>(width));
        // The header: one line, nothing over it.
        const std::string header = line_with(screen, "PID");
        CHECK(header.find("COMM") != std::string::npos);
        CHECK(header.find("WRITE/s") != std::string::npos);
        // The file path: both its ends; all of it when there is room.
        const std::string path_line = file_line_of(screen, "dw-longpath");
        CHECK(path_line.find("file /tmp/dw-loop") != std::string::npos);
        CHECK(path_line.find("/var/log/app/eve-json-long.log") != std::string::npos);
        if (width >= 200)
            CHECK(path_line.find(file) != std::string::npos);
        else
            CHECK(path_line.find("...") != std::string::npos);
        CHECK(file_line_of(screen, "dw-ghost").find("ghost.log (DELETED, still open)") != std::string::npos);
        // The row: its name and its rate, on one line.
        CHECK(line_with(screen, "dw-longpath").find("/s") != std::string::npos);
        // The mount: shortened or not, its end and "full in" on one line.
        const std::string mount_line = line_with(screen, mount_tail);
        CHECK(mount_line.find("full in") != std::string::npos);
        CHECK(mount_line.find('%') != std::string::npos);
        if (width >= 120)
            CHECK(mount_line.find(disk.path()) != std::string::npos);
        if (width >= 200)
            CHECK(header.find("HISTORY") != std::string::npos);

        if (width == 120) {
            // A resize redraws at once, to the new size.
            tmux.resize(80, 24);
            const bool fitted = screen_until(tmux, [&](const std::string &now) {
                return line_with(now, "PID").find("WRITE/s") != std::string::npos &&
                       line_with(now, "PID").find("HISTORY") == std::string::npos && widest_line(now) <= 80;
            }, std::chrono::seconds(3));
            INFO(tmux.screen());
            CHECK(fitted);
        }
        const auto quit_after = time_to_quit_on_escape(tmux);
        INFO(tmux.screen());
        CHECK(tmux.screen().find("top-exited-0") != std::string::npos);
        CHECK(quit_after < std::chrono::milliseconds(1000));
    }
}

TEST_CASE("the live view draws HISTORY as Unicode blocks in a UTF-8 locale and as ASCII levels in the C locale",
          "[top][interactive][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    auto writer = start_writer(disk.path() + "/spark.log", 200LL << 20, "dw-sparkline",
                               {"--rate", std::to_string(4 << 20)});
    const std::string blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    for (const bool utf8 : {true, false}) {
        INFO((utf8 ? "LC_ALL=C.UTF-8" : "LC_ALL=C"));
        TmuxSession tmux(std::string("LC_ALL=") + (utf8 ? "C.UTF-8 " : "C ") + DW_BINARY +
                         " top --local -d 1; echo top-exited-$?; sleep 30");
        REQUIRE(tmux.wait_for("dw-sparkline", std::chrono::seconds(30)));
        std::this_thread::sleep_for(std::chrono::seconds(3));  // a few refreshes of history
        const std::string screen = tmux.screen();
        INFO(screen);
        // The history column starts where its title does: everything left of
        // it is ASCII in both locales (names are drawn as ASCII).
        const size_t column = line_with(screen, "PID").find("HISTORY");
        REQUIRE(column != std::string::npos);
        const std::string row = line_with(screen, "dw-sparkline");
        REQUIRE(row.size() > column);
        const std::string history = row.substr(column);
        const bool has_block = std::any_of(std::begin(blocks), std::end(blocks),
                                           [&](const std::string &block) { return history.find(block) != std::string::npos; });
        if (utf8) {
            CHECK(has_block);
        } else {
            CHECK_FALSE(has_block);
            CHECK(history.find_first_of(".:-=+*#@") != std::string::npos);
            CHECK(std::all_of(screen.begin(), screen.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
        }
        tmux.keys("q");
        CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
    }
}

namespace {

// The status line's "row I/N": {I, N}, or {0, 0} when it is not there.
std::pair<long, long> selected_row(const std::string &screen)
{
    const std::string line = line_with(screen, "   row ");
    const size_t at = line.rfind("row ");
    long index = 0;
    long count = 0;
    if (at == std::string::npos || std::sscanf(line.c_str() + at, "row %ld/%ld", &index, &count) != 2)
        return {0, 0};
    return {index, count};
}

}  // namespace

TEST_CASE("the live view selects rows with Up, Down, PgDn, End and Home, and scrolls to keep the selection in sight",
          "[top][interactive][select][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    TmuxSession tmux(std::string(DW_BINARY) + " top --local -a -d 1; echo top-exited-$?; sleep 30", 80, 24);
    REQUIRE(tmux.wait_for("PID", std::chrono::seconds(30)));
    // More writers than an 80x24 screen has lines; -a keeps them after they exit.
    constexpr int kWriters = 30;
    for (int i = 0; i < kWriters; ++i)
        REQUIRE(run_writer({"--mode", "write", "--file", disk.path() + "/row-" + std::to_string(i), "--bytes",
                            std::to_string((i + 1) * 64 * 1024), "--comm", "dw-row-" + std::to_string(100 + i)})
                    .written == (i + 1) * 64 * 1024);
    // Only ours (other processes of this machine write too), by total: the largest, dw-row-129, first.
    tmux.keys("/");
    tmux.keys("dw-row-");
    tmux.keys("Enter");
    REQUIRE(screen_until(tmux, [](const std::string &screen) {
        return selected_row(screen).second == kWriters;
    }, std::chrono::seconds(10)));
    tmux.keys("s");
    REQUIRE(tmux.wait_for("sort total", std::chrono::seconds(5)));
    CHECK(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).first == 1; },
                       std::chrono::seconds(5)));
    CHECK(tmux.screen().find("dw-row-129") != std::string::npos);

    tmux.keys("Down");
    tmux.keys("Down");
    CHECK(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).first == 3; },
                       std::chrono::seconds(5)));
    tmux.keys("NPage");
    CHECK(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).first > 3; },
                       std::chrono::seconds(5)));
    tmux.keys("End");
    CHECK(screen_until(tmux, [](const std::string &screen) {
        const auto [index, count] = selected_row(screen);
        return index > 0 && index == count;
    }, std::chrono::seconds(5)));
    // Scrolled: the smallest of our writers is in sight, the largest is not.
    std::string screen = tmux.screen();
    INFO(screen);
    CHECK(screen.find("dw-row-129") == std::string::npos);
    CHECK(screen.find("dw-row-100") != std::string::npos);
    tmux.keys("Home");
    CHECK(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).first == 1; },
                       std::chrono::seconds(5)));
    CHECK(tmux.screen().find("dw-row-129") != std::string::npos);
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}

TEST_CASE("attached to an agent, the live view throttles, releases with a snooze, protects and kills the selected "
          "row, each confirmed, each an event saying top asked",
          "[top][interactive][attach][act][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    // No rule of the policy holds for our writers: whatever happens to them, top asked for it.
    // Its kill rule's grace is the one a kill from top gets.
    AgentRun agent(PolicyYaml().interval("250ms").rule("never").match("comm", {"dw-nobody-*"}).when("1MiB/s")
                       .action("kill").set("kill_grace", "700ms"));
    REQUIRE(agent.started());
    auto actee = start_writer(disk.path() + "/actee.log", 300LL << 20, "dw-actee", {"--rate", std::to_string(4 << 20)});
    // The victim ignores SIGTERM, as a wedged logger may: the kill's SIGKILL after the grace ends it.
    auto victim = start_writer(disk.path() + "/victim.log", 300LL << 20, "dw-victim",
                               {"--rate", std::to_string(1 << 20), "--ignore-sigterm", "1"});
    TmuxSession tmux(std::string(DW_BINARY) + " top -d 1 --control-socket " + agent.state_dir() +
                     "/control.sock; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("agent " + std::to_string(agent.pid()), std::chrono::seconds(30)));
    const std::string actee_pid = std::to_string(actee.pid());
    auto select_only = [&](const std::string &comm) {
        tmux.keys("\\");
        tmux.keys("/");
        tmux.keys(comm);
        tmux.keys("Enter");
        return screen_until(tmux, [&](const std::string &screen) {
            return line_with(screen, "   row ").find("row 1/1") != std::string::npos && screen.find(comm) != std::string::npos;
        }, std::chrono::seconds(15));
    };
    auto requested_event = [&](const std::string &action, pid_t pid) {
        return agent.wait_for([&](const nlohmann::json &e) {
            return e.value("action", "") == action && e.value("requested", "") == "top" && e.contains("process") &&
                   e["process"].value("pid", 0) == pid;
        }, std::chrono::seconds(10));
    };
    REQUIRE(select_only("dw-actee"));

    // t: a rate typed over the default; the prompt first, nothing done until Enter.
    tmux.keys("t");
    REQUIRE(tmux.wait_for("throttle pid " + actee_pid + " (dw-actee) to: 1MiB/s_", std::chrono::seconds(5)));
    for (int i = 0; i < 6; ++i)
        tmux.keys("BSpace");
    tmux.keys("256KiB/s");
    tmux.keys("Enter");
    CHECK(tmux.wait_for("throttled process:" + actee_pid, std::chrono::seconds(10)));
    auto throttled = requested_event("throttle", actee.pid());
    REQUIRE(throttled);
    CHECK((*throttled)["rule"] == "requested from top");
    CHECK((*throttled)["requested_uid"] == 0);
    CHECK((*throttled)["requested_pid"].get<int>() > 0);
    CHECK((*throttled)["dry_run"] == false);
    CHECK(tmux.wait_for("throttled", std::chrono::seconds(5)));  // the AGENT column

    // u: released, and left alone for 30 s.
    tmux.keys("u");
    REQUIRE(tmux.wait_for("leave it alone for", std::chrono::seconds(5)));
    tmux.keys("30s");
    tmux.keys("Enter");
    CHECK(tmux.wait_for("released " + actee_pid, std::chrono::seconds(10)));
    auto released = requested_event("release", actee.pid());
    REQUIRE(released);
    CHECK((*released)["snooze_s"] == 30.0);
    CHECK((*released)["requested_uid"] == 0);

    // P: protected until the agent restarts; a kill from top is then refused.
    tmux.keys("P");
    REQUIRE(tmux.wait_for("until the agent restarts?  [y/N]", std::chrono::seconds(5)));
    tmux.keys("y");
    CHECK(tmux.wait_for("protected process:" + actee_pid, std::chrono::seconds(10)));
    REQUIRE(requested_event("protect", actee.pid()));
    tmux.keys("k");
    REQUIRE(tmux.wait_for("kill pid " + actee_pid, std::chrono::seconds(5)));
    tmux.keys("y");
    CHECK(tmux.wait_for("kill refused: not acted on", std::chrono::seconds(10)));
    CHECK_FALSE(actee.exited());

    // k on another row: n cancels, y kills it (SIGTERM).
    REQUIRE(select_only("dw-victim"));
    tmux.keys("k");
    REQUIRE(tmux.wait_for("kill pid " + std::to_string(victim.pid()) + " (dw-victim)?", std::chrono::seconds(5)));
    tmux.keys("n");
    CHECK(tmux.wait_for("cancelled", std::chrono::seconds(5)));
    CHECK_FALSE(victim.exited());
    tmux.keys("k");
    tmux.keys("y");
    CHECK(tmux.wait_for("killing process:" + std::to_string(victim.pid()), std::chrono::seconds(10)));
    CHECK(victim.wait(std::chrono::seconds(10)).has_value());
    auto killed = requested_event("kill", victim.pid());
    REQUIRE(killed);
    CHECK((*killed)["kill_grace_s"].get<double>() == Approx(0.7));  // the policy's grace
    // The SIGKILL that followed says who asked, too.
    auto sigkill = agent.wait_for([&](const nlohmann::json &e) {
        return e.value("action", "") == "kill" && e.value("signal", "") == "SIGKILL" && e.contains("process") &&
               e["process"].value("pid", 0) == victim.pid();
    }, std::chrono::seconds(10));
    REQUIRE(sigkill);
    CHECK((*sigkill)["requested"] == "top");
    CHECK((*sigkill)["requested_uid"] == 0);
    CHECK(actee.exited() == false);
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}

TEST_CASE("the live view without an agent says acting needs one, and asks nothing", "[top][interactive][act][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    auto writer = start_writer(disk.path() + "/w.log", 64LL << 20, "dw-unattached", {"--rate", std::to_string(1 << 20)});
    TmuxSession tmux(std::string(DW_BINARY) + " top --local -d 1; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("dw-unattached", std::chrono::seconds(30)));
    tmux.keys("k");
    CHECK(tmux.wait_for("acting needs top attached to a running agent", std::chrono::seconds(5)));
    CHECK(tmux.screen().find("[y/N]") == std::string::npos);
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
    CHECK_FALSE(writer.exited());
}

TEST_CASE("T shows the cgroups as a tree, each line with its subtree's total, the parent that wrote nothing itself "
          "included",
          "[top][interactive][tree][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    Cgroup2Child parent("dw-tree");
    // Two services below a parent that writes nothing itself, as units below a slice.
    struct Service {
        std::string path;
        explicit Service(const std::string &p) : path(p) { REQUIRE(::mkdir(path.c_str(), 0755) == 0); }
        ~Service()
        {
            { std::ofstream(path + "/cgroup.kill") << "1"; }
            for (int attempt = 0; attempt < 100 && ::rmdir(path.c_str()) != 0 && errno != ENOENT; ++attempt)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    };
    Service a(parent.path() + "/svc-a");
    Service b(parent.path() + "/svc-b");
    TmuxSession tmux(std::string(DW_BINARY) + " top --local -a -d 1; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("PID", std::chrono::seconds(30)));
    REQUIRE(run_writer({"--mode", "write", "--file", disk.path() + "/a", "--bytes", std::to_string(4 << 20), "--comm",
                        "dw-tree-a", "--cgroup", a.path}).written == 4 << 20);
    REQUIRE(run_writer({"--mode", "write", "--file", disk.path() + "/b", "--bytes", std::to_string(2 << 20), "--comm",
                        "dw-tree-b", "--cgroup", b.path}).written == 2 << 20);
    tmux.keys("/");
    tmux.keys("dw-tree");
    tmux.keys("Enter");
    tmux.keys("T");
    REQUIRE(tmux.wait_for("by cgroup tree", std::chrono::seconds(5)));
    const std::string parent_name = parent.relative_path().substr(1);
    const bool drawn = screen_until(tmux, [&](const std::string &screen) {
        return line_with(screen, "    svc-b").find(" 2.00M ") != std::string::npos;
    }, std::chrono::seconds(10));
    const std::string screen = tmux.screen();
    INFO(screen);
    CHECK(drawn);
    // The parent: indented once, the sum of both, no pid of its own.
    const std::string parent_line = line_with(screen, "  " + parent_name);
    CHECK(parent_line.find(" 6.00M ") != std::string::npos);
    CHECK(parent_line.find("[dw-tree") == std::string::npos);  // no writer of its own
    CHECK(line_with(screen, "    svc-a").find(" 4.00M ") != std::string::npos);
    CHECK(line_with(screen, "    svc-a").find("dw-tree-a") != std::string::npos);
    // By the sort (total, here: both are idle now), the larger first.
    CHECK(screen.find("    svc-a") < screen.find("    svc-b"));
    tmux.keys("T");  // back to the flat cgroup rows
    CHECK(screen_until(tmux, [](const std::string &now) {
        return now.find("by cgroup ") != std::string::npos && now.find("by cgroup tree") == std::string::npos;
    }, std::chrono::seconds(5)));
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}

TEST_CASE("attached to an agent with a slow interval, keys answer at once: the round trips run beside the keys",
          "[top][interactive][attach][keys][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    // The agent answers a snapshot from its next refresh: with a 3 s interval
    // a refresh that blocked the keys would hold each of them up to 6 s.
    AgentRun agent(PolicyYaml().interval("3s").rule("never").match("comm", {"dw-nobody-*"}).when("1MiB/s"));
    REQUIRE(agent.started());
    TmuxSession tmux(std::string(DW_BINARY) + " top -d 1 --control-socket " + agent.state_dir() +
                     "/control.sock; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("agent " + std::to_string(agent.pid()), std::chrono::seconds(30)));
    double slowest_s = 0;
    for (int round = 0; round < 6; ++round) {
        // Help on, help off: each time from the key to the screen that shows it.
        for (const auto &[key, needle, shown] : {std::tuple<std::string, std::string, bool>{"h", "any key returns", true},
                                                 {"x", "any key returns", false}}) {
            const auto pressed = std::chrono::steady_clock::now();
            tmux.keys(key);
            const bool answered = screen_until(tmux, [&, needle = needle, shown = shown](const std::string &screen) {
                return (screen.find(needle) != std::string::npos) == shown;
            }, std::chrono::seconds(10));
            REQUIRE(answered);
            slowest_s = std::max(slowest_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - pressed).count());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(700));  // land on other moments of the agent's interval
    }
    INFO("slowest key: " << slowest_s << " s");
    // Generous for a loaded machine (the poll and tmux's own capture add to it),
    // far under the 3-6 s a blocking refresh took.
    CHECK(slowest_s < 1.5);
    const auto quit = std::chrono::steady_clock::now();
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - quit).count() < 8);
}

TEST_CASE("the live view's other keys on the screen: p, g, a, I, Up, PgUp, and a mouse click select as the help says",
          "[top][interactive][select][keys][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    TmuxSession tmux(std::string(DW_BINARY) + " top --local -a -d 1; echo top-exited-$?; sleep 30", 160, 40);
    REQUIRE(tmux.wait_for("PID", std::chrono::seconds(30)));
    constexpr int kWriters = 6;
    for (int i = 0; i < kWriters; ++i)
        REQUIRE(run_writer({"--mode", "write", "--file", disk.path() + "/k-" + std::to_string(i), "--bytes",
                            std::to_string((i + 1) * 64 * 1024), "--comm", "dw-key-" + std::to_string(i)})
                    .written == (i + 1) * 64 * 1024);
    tmux.keys("/");
    tmux.keys("dw-key-");
    tmux.keys("Enter");
    REQUIRE(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).second == kWriters; },
                         std::chrono::seconds(10)));
    auto title_has = [&](const std::string &text, bool wanted) {
        return screen_until(tmux, [&](const std::string &screen) {
            return (line_with(screen, "ebpf-diskwatch ").find(text) != std::string::npos) == wanted;
        }, std::chrono::seconds(5));
    };
    // a: accumulated off and on again.
    tmux.keys("a");
    CHECK(title_has("[accumulated]", false));
    tmux.keys("a");
    CHECK(title_has("[accumulated]", true));
    // g steps through the groupings; p goes back to processes.
    tmux.keys("g");
    CHECK(title_has("by cgroup ", true));
    tmux.keys("g");
    CHECK(title_has("by mount ", true));
    tmux.keys("p");
    CHECK(title_has("by process ", true));
    // I (htop's key) reverses the sort, and again.
    tmux.keys("I");
    CHECK(title_has("(reversed)", true));
    tmux.keys("I");
    CHECK(title_has("(reversed)", false));
    REQUIRE(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).second == kWriters; },
                         std::chrono::seconds(10)));
    // End, then Up: the one before the last; PgUp: the first (a page holds them all).
    tmux.keys("End");
    tmux.keys("Up");
    CHECK(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).first == kWriters - 1; },
                       std::chrono::seconds(5)));
    tmux.keys("PPage");
    CHECK(screen_until(tmux, [](const std::string &screen) { return selected_row(screen).first == 1; },
                       std::chrono::seconds(5)));
    // A click (the terminal's X10 mouse report: ESC [ M, button, column, line,
    // each plus 32) on the third row's line selects it.
    const std::string screen = tmux.screen();
    const auto lines = screen_lines(screen);
    int header = -1;
    for (size_t i = 0; i < lines.size(); ++i)
        if (lines[i].find("PID") != std::string::npos && lines[i].find("COMM") != std::string::npos)
            header = static_cast<int>(i);
    REQUIRE(header >= 0);
    int third = -1;  // rows may have a file line under them: count the lines with a pid
    for (int i = header + 1, rows = 0; i < static_cast<int>(lines.size()); ++i)
        if (lines[static_cast<size_t>(i)].find("dw-key-") != std::string::npos && ++rows == 3) {
            third = i;
            break;
        }
    REQUIRE(third > header);
    const std::string click = std::string("\x1b[M") + static_cast<char>(32 + 0) + static_cast<char>(32 + 5) +
                              static_cast<char>(32 + third + 1);
    run({kTmux, "-S", tmux.socket, "send-keys", "-t", tmux.name, "-l", click});
    CHECK(screen_until(tmux, [](const std::string &now) { return selected_row(now).first == 3; },
                       std::chrono::seconds(5)));
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}
