// Hostile names end to end (docs/security.md): names that any unprivileged
// user controls -- a process name, a cgroup directory, a mount point, an
// executable's path -- holding quotes, backslashes, newlines, braces, bytes
// that are not UTF-8 and terminal escape sequences. Through `top -b --json`
// each round-trips byte for byte (docs/top-json.md, "Names") on exactly one
// row, and every line stays one valid JSON object; in the live view under a
// real terminal (tmux), no escape sequence reaches the terminal raw.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <thread>

#include "support/agent_run.h"
#include "support/exact_names.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;

// Every row for `pid` over all refreshes.
std::vector<json> rows_of(const TopRun &run, int pid)
{
    std::vector<json> rows;
    for (const auto &refresh : run.refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == pid)
                rows.push_back(row);
    return rows;
}

// What a person would see in the test's log: the name with its bytes shown.
std::string shown(const std::string &name)
{
    std::string out;
    for (unsigned char c : name) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
        out += hex;
    }
    return out;
}

// Process names, each within the kernel's 15 bytes (TASK_COMM_LEN - 1).
const std::vector<std::string> kHostileComms = {
    "q\"b\\s{}\n",                // quote, backslash, braces, newline
    "\"}\n{\"pid\":1,",           // tries to end the object and forge a new line
    "\xff\xfe\xc3(\xed\xa0\x80x",  // not UTF-8: stray bytes, a cut sequence, a surrogate
    "\x1b[2J\x1b[Hclr",           // clear the screen, cursor home
    "\x1b]52;c;aGk=\x07",         // OSC 52: set the clipboard to "hi"
    "\x9b" "31mc1",               // 8-bit CSI (a bare C1 byte, not UTF-8)
    "\xc2\x9b" "31mc1u",          // the same C1 control, as valid UTF-8
    "\\x1b[2Jfake",               // the escaped *form*, typed literally
};

// A tmpfs mounted at a directory whose name is hostile, with a copy of
// dw-test-writer in it under a hostile file name (an exe path hostile all the
// way), removed however the test ends.
struct HostileMount {
    std::string base;
    std::string path;
    std::string exe;
    HostileMount(const std::string &name, const std::string &writer_name)
        : base(make_owned_temp_dir("dw-hostile")),  // swept if the binary is killed
          path(base + "/" + name), exe(path + "/" + writer_name)
    {
        ::chmod(base.c_str(), 0755);
        REQUIRE(::mkdir(path.c_str(), 0755) == 0);
        REQUIRE(::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=65536k") == 0);
        std::filesystem::copy_file(DW_TEST_WRITER, exe);
        ::chmod(exe.c_str(), 0755);
    }
    ~HostileMount()
    {
        if (::umount2(path.c_str(), 0) != 0)
            ::umount2(path.c_str(), MNT_DETACH);
        ::rmdir(path.c_str());
        ::rmdir(base.c_str());
    }
};

// One dw-test-writer per hostile comm, 1 MiB each into its own file in `dir`.
std::vector<WriterResult> run_hostile_comm_writers(const std::string &dir)
{
    std::vector<WriterResult> writers(kHostileComms.size());
    for (size_t i = 0; i < kHostileComms.size(); ++i)
        writers[i] = run_writer({"--mode", "write", "--file", dir + "/w" + std::to_string(i), "--bytes",
                                 std::to_string(kMiB), "--comm", kHostileComms[i]});
    return writers;
}

}  // namespace

TEST_CASE("hostile process names round-trip exactly through top --json, one row each", "[security][names][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    std::vector<WriterResult> writers;
    auto run = run_top_while({"--by", "process"}, 1, 6, [&] { writers = run_hostile_comm_writers(disk.path()); });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() == 1);  // (run_top_while REQUIREs every line to parse)
    for (size_t i = 0; i < kHostileComms.size(); ++i) {
        const std::string expected = kHostileComms[i].substr(0, 15);
        INFO("comm " << shown(expected) << " pid " << writers[i].pid);
        const auto rows = rows_of(run, writers[i].pid);
        REQUIRE(rows.size() == 1);
        CHECK(exact_name(rows[0], "comm") == expected);
        CHECK(rows[0].at("mount") == disk.path());
        CHECK(rows[0].at("write_bytes") == writers[i].written);
    }
}

TEST_CASE("hostile process names round-trip exactly through the agent's control socket to top attached",
          "[security][names][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    AgentRun agent("interval: 250ms\nrules: []\n");
    REQUIRE(agent.started());
    std::vector<WriterResult> writers;
    auto run = run_top_while({"--by", "process", "--control-socket", agent.state_dir() + "/control.sock"}, 1, 6,
                             [&] { writers = run_hostile_comm_writers(disk.path()); });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() == 1);
    CHECK(run.refreshes[0].at("source") == "agent");
    for (size_t i = 0; i < kHostileComms.size(); ++i) {
        const std::string expected = kHostileComms[i].substr(0, 15);
        INFO("comm " << shown(expected) << " pid " << writers[i].pid);
        const auto rows = rows_of(run, writers[i].pid);
        REQUIRE(rows.size() == 1);
        CHECK(exact_name(rows[0], "comm") == expected);
        CHECK(rows[0].at("write_bytes") == kMiB);
    }
}

TEST_CASE("a hostile cgroup name round-trips exactly through top --json", "[security][names][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    // Anything but '/' and '\n' (cgroup_mkdir refuses a newline).
    Cgroup2Child cgroup("dw-\"q\\{}\x1b[2J\x1b]52;c;aGk=\x07\xff\xfe\t<");
    WriterResult writer;
    auto run = run_top_while({"--by", "cgroup"}, 1, 4, [&] {
        writer = run_writer({"--mode", "write", "--file", disk.path() + "/c", "--bytes", std::to_string(2 * kMiB),
                             "--cgroup", cgroup.path(), "--comm", "dw-cg-writer"});
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() == 1);
    std::vector<json> rows;
    for (const auto &row : run.refreshes[0].at("rows"))
        if (row.at("cgroup_id") == cgroup.id())
            rows.push_back(row);
    INFO("cgroup " << shown(cgroup.relative_path()));
    REQUIRE(rows.size() == 1);
    CHECK(exact_name(rows[0], "cgroup") == cgroup.relative_path());
    CHECK(rows[0].contains("cgroup_b64"));  // it holds bytes that are not UTF-8
    CHECK(rows[0].at("write_bytes") == writer.written);
}

TEST_CASE("a hostile mount point and executable path round-trip exactly through top --json",
          "[security][names][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    // mountinfo escapes space, tab, newline and backslash as octal; the rest
    // arrives raw. Both kinds are here.
    HostileMount mount("m \"\\{}\n\t\x1b[2J\xff\xc3(", "w\"\\\n\x1b]52;c;aGk=\x07\xfe");
    int pid = 0;
    long long written = 0;
    auto run = run_top_while({"--by", "process"}, 1, 4, [&] {
        // It outlives the refresh, so top reads its /proc/PID/exe.
        auto writer = ChildProcess::start({mount.exe, "--mode", "write", "--file", mount.path + "/f\n\"", "--bytes",
                                           std::to_string(kMiB), "--comm", "dw-path-writer", "--linger-ms", "6000"});
        auto status = writer.wait(std::chrono::seconds(60));
        INFO(writer.out() << writer.err());
        REQUIRE(status == 0);
        REQUIRE(std::sscanf(writer.out().c_str(), "pid %d wrote %lld", &pid, &written) == 2);
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() == 1);
    INFO("mount " << shown(mount.path) << "\nexe " << shown(mount.exe));
    const auto rows = rows_of(run, pid);
    REQUIRE(rows.size() == 1);
    CHECK(exact_name(rows[0], "mount") == mount.path);
    CHECK(exact_name(rows[0], "exe") == mount.exe);
    CHECK(rows[0].at("write_bytes") == written);
    std::vector<json> mounts;
    for (const auto &entry : run.refreshes[0].at("mounts"))
        if (exact_name(entry, "mount") == mount.path)
            mounts.push_back(entry);
    REQUIRE(mounts.size() == 1);
    CHECK(mounts[0].at("write_bytes") == written);
}

TEST_CASE("the agent's events carry hostile names exactly: comm, exe, cgroup and mount not UTF-8",
          "[security][names][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    HostileMount mount("m\"\\{}\n\x1b[2J\xff\xc3(", "w\"\n\x1b]52;c;aGk=\x07\xfe");
    Cgroup2Child cgroup("dw-evname-\"\\{}\x1b[2J\xff\xfe");
    const std::string comm = "ev\xff\xfe\"}\n{\x1b[2J";
    AgentRun agent(R"(interval: 250ms
mounts: {}
rules:
  - name: names
    match:
      cgroup: ["*dw-evname*"]
    when:
      write_rate: 5MiB/s
      for: 500ms
    action: alert
)");
    REQUIRE(agent.started());
    auto writer = ChildProcess::start({mount.exe, "--mode", "write", "--file", mount.path + "/f", "--bytes",
                                       std::to_string(48 * kMiB), "--chunk", "65536", "--rate",
                                       std::to_string(24 * kMiB), "--comm", comm, "--cgroup", cgroup.path(),
                                       "--linger-ms", "1000"});
    auto runaway = agent.wait_for(
        [&](const json &e) {
            return e.value("event", "") == "runaway" && e.at("process").value("pid", 0) == writer.pid();
        },
        std::chrono::seconds(30));
    auto alert = agent.wait_for(
        [&](const json &e) {
            return e.value("event", "") == "action" && e.at("process").value("pid", 0) == writer.pid();
        },
        std::chrono::seconds(10));
    REQUIRE(writer.wait(std::chrono::seconds(60)) == 0);
    REQUIRE(agent.stop() == 0);
    INFO("comm " << shown(comm) << "\nexe " << shown(mount.exe) << "\ncgroup " << shown(cgroup.relative_path())
                 << "\nmount " << shown(mount.path) << "\n" << agent.events_text());
    REQUIRE(runaway);
    REQUIRE(alert);
    for (const auto &event : {*runaway, *alert}) {
        CHECK(exact_name(event.at("process"), "comm") == comm);
        CHECK(event.at("process").contains("comm_b64"));
        CHECK(exact_name(event.at("process"), "exe") == mount.exe);
        CHECK(exact_name(event.at("cgroup"), "path") == cgroup.relative_path());
        CHECK(exact_name(event.at("mount"), "path") == mount.path);
    }
    // Every byte of the stream is printable ASCII or the newline that ends an
    // event: no name can drive the terminal of whoever tails it.
    const std::string text = agent.events_text();
    size_t bad = 0;
    for (unsigned char c : text)
        bad += !(c == '\n' || (c >= 0x20 && c < 0x7f));
    CHECK(bad == 0);
}

namespace {

// A tmux server of the test's own (-S, its socket in a scratch directory
// removed with it), so its options and paste buffers are ours alone, with
// set-clipboard on: an OSC 52 that reached the terminal raw would become a
// tmux paste buffer, which the test can see.
struct PrivateTmux {
    ScratchDir dir;
    std::string socket = dir.path() + "/tmux.sock";
    const std::string tmux = "/usr/bin/tmux";
    std::vector<std::string> command(std::vector<std::string> arguments) const
    {
        arguments.insert(arguments.begin(), {tmux, "-S", socket, "-f", "/dev/null"});
        return arguments;
    }
    explicit PrivateTmux(const std::string &shell_command)
    {
        REQUIRE(run(command({"new-session", "-d", "-s", "top", "-x", "200", "-y", "50", shell_command})) == 0);
        REQUIRE(run(command({"set-option", "-g", "set-clipboard", "on"})) == 0);
    }
    ~PrivateTmux() { run(command({"kill-server"})); }
    std::string capture(const std::string &target, bool escapes) const
    {
        std::string text;
        run(command(escapes ? std::vector<std::string>{"capture-pane", "-p", "-e", "-t", target}
                            : std::vector<std::string>{"capture-pane", "-p", "-t", target}),
            &text);
        return text;
    }
    std::string buffers() const
    {
        std::string text;
        run(command({"list-buffers", "-F", "#{buffer_sample}"}), &text);
        return text;
    }
    bool wait_for(const std::string &target, const std::string &needle, std::chrono::seconds timeout) const
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (capture(target, false).find(needle) != std::string::npos)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        return false;
    }
};

}  // namespace

TEST_CASE("in the live view a hostile name is shown escaped and never reaches the terminal raw",
          "[security][names][interactive][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    Cgroup2Child cgroup("dw-\x1b[2J\x1b]52;c;Y2c=\x07");
    PrivateTmux tmux(std::string(DW_BINARY) + " top -d 1 -a; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("top", "PID", std::chrono::seconds(30)));
    run_writer({"--mode", "write", "--file", disk.path() + "/a", "--bytes", std::to_string(4 * kMiB), "--comm",
                "\x1b[2Jclr"});
    run_writer({"--mode", "write", "--file", disk.path() + "/b", "--bytes", std::to_string(4 * kMiB), "--comm",
                "\x1b]52;c;aGk=\x07", "--cgroup", cgroup.path()});
    // A name that spells an escape out, to pass for the one above.
    run_writer({"--mode", "write", "--file", disk.path() + "/c", "--bytes", std::to_string(4 * kMiB), "--comm",
                "\\x1b[2Jtyped"});
    // The escaped forms are visible, and the spelled-out one looks different.
    INFO(tmux.capture("top", false));
    REQUIRE(tmux.wait_for("top", "\\x1b[2Jclr", std::chrono::seconds(15)));
    REQUIRE(tmux.wait_for("top", "\\x1b]52;c;aGk=", std::chrono::seconds(5)));
    REQUIRE(tmux.wait_for("top", "\\\\x1b[2Jtyped", std::chrono::seconds(5)));
    std::this_thread::sleep_for(std::chrono::seconds(2));  // a few more redraws
    // ... and the only escape sequences on the screen are the view's own
    // colours and attributes (SGR, ESC [ ... m), which tmux re-emits.
    const std::string screen = tmux.capture("top", true);
    const std::regex sgr("\x1b\\[[0-9;:]*m");
    const std::string without_sgr = std::regex_replace(screen, sgr, "");
    INFO("screen with escapes:\n" << shown(screen));
    CHECK(without_sgr.find('\x1b') == std::string::npos);
    CHECK(without_sgr.find('\x07') == std::string::npos);
    // No OSC 52 got through: tmux made no paste buffer of it.
    CHECK(tmux.buffers().empty());
    run(tmux.command({"send-keys", "-t", "top", "q"}));
    CHECK(tmux.wait_for("top", "top-exited-0", std::chrono::seconds(10)));

    // The control: the same OSC 52 written raw to a pane of this server does
    // become a paste buffer, so the check above can fail.
    REQUIRE(run(tmux.command({"new-session", "-d", "-s", "control", "printf '\\033]52;c;Y29udHJvbA==\\007'; sleep 30"})) == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (tmux.buffers().empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_THAT(tmux.buffers(), Catch::Contains("control"));
}
