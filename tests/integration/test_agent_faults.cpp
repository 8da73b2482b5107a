// Faults around the agent (docs/security.md, rows 18, 19, 19a, 21-24, 24b): the event
// file's disk full, the metrics port taken, a target whose pid is recycled
// mid-action or before the action (its exit record lost), the event file
// rotated under it (by itself and by logrotate), and a soak with floods, exec
// storms and policy reloads, and ESRCH injected into its /proc reads by strace.
// Real BPF programs, real tmpfs/loop mounts, real signals.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "actions/pidfd.h"
#include "resolve/processes.h"
#include "ecosystem/ecosystem_support.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/soak.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr long long kMiB = 1 << 20;

std::optional<json> status_of(const AgentRun &agent)
{
    auto status = ChildProcess::start(
        {DW_BINARY, "status", "--json", "--control-socket", agent.state_dir() + "/control.sock"});
    if (status.wait(std::chrono::seconds(30)) != 0)
        return std::nullopt;
    return json::parse(status.out());
}

std::optional<json> sink_status(const AgentRun &agent, const std::string &name)
{
    auto status = status_of(agent);
    if (!status)
        return std::nullopt;
    for (const auto &sink : status->at("sinks"))
        if (sink.at("name") == name)
            return sink;
    return std::nullopt;
}

std::string read_text(const std::string &path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Every line of an NDJSON file, each required to be one whole JSON object
// (strict; else, while the agent may be writing, a line not yet complete is skipped).
std::vector<json> parse_ndjson(const std::string &path, bool strict = true)
{
    std::vector<json> events;
    std::istringstream lines(read_text(path));
    std::string line;
    while (std::getline(lines, line)) {
        if (!strict) {
            auto event = json::parse(line, nullptr, false);
            if (event.is_object())
                events.push_back(std::move(event));
            continue;
        }
        INFO(path << ": a line that is not one JSON object: " << line);
        REQUIRE_FALSE(line.empty());
        auto event = json::parse(line, nullptr, false);
        REQUIRE(event.is_object());
        events.push_back(std::move(event));
    }
    return events;
}

size_t count_of(const std::string &text, const std::string &needle)
{
    size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size()))
        ++n;
    return n;
}

// The value of one sample of the /metrics page, or -1.
double metric_value(const std::string &page, const std::string &series)
{
    std::istringstream lines(page);
    std::string line;
    while (std::getline(lines, line))
        if (line.rfind(series + " ", 0) == 0)
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

bool is_kill_of(const json &event, int pid)
{
    return event.value("event", "") == "action" && event.value("action", "") == "kill" &&
           event.contains("process") && event["process"].value("pid", 0) == pid;
}

// The ts of the newest policy.reload event, or "".
std::string newest_reload(const std::vector<json> &events)
{
    std::string newest;
    for (const auto &event : events)
        if (event.value("event", "") == "policy.reload")
            newest = std::max(newest, event.at("ts").get<std::string>());
    return newest;
}

// Sends SIGHUP and waits until the agent has answered it with a new
// policy.reload event (in the files `read_all` returns; rotation may have
// dropped older ones, so the newest timestamp is compared, not a count).
bool reload_and_wait(AgentRun &agent, const std::function<std::vector<json>()> &read_all)
{
    const std::string before = newest_reload(read_all());
    agent.signal(SIGHUP);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        if (newest_reload(read_all()) > before)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

// Leaves a tmpfs with no room at all for the event file: its last page filled
// with a JSON line of padding (tmpfs allocates whole pages, so appends into the
// page's tail would still succeed), then every free page taken by a filler.
void fill_up(const std::string &events_path, const std::string &filler_path)
{
    const long page = ::sysconf(_SC_PAGESIZE);
    struct stat st {};
    REQUIRE(::stat(events_path.c_str(), &st) == 0);
    long slack = (page - st.st_size % page) % page;
    if (slack < 16)
        slack += page;
    const std::string pad = "{\"pad\":\"" + std::string(static_cast<size_t>(slack) - 11, 'x') + "\"}\n";
    REQUIRE(static_cast<long>(pad.size()) == slack);
    {
        const int fd = ::open(events_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, pad.data(), pad.size()) == static_cast<ssize_t>(pad.size()));
        ::close(fd);
    }
    const int fd = ::open(filler_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    const std::string chunk(static_cast<size_t>(page), 'f');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    CHECK(errno == ENOSPC);
    ::close(fd);
}

}  // namespace

TEST_CASE("with the event file's disk full the agent still kills a flood, counts the lost events, says so once, "
          "and recovers",
          "[security][faults][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(384);
    TmpfsMount event_disk(256);  // KiB
    const std::string events_path = event_disk.path() + "/events.json";
    AgentRun agent(R"(interval: 250ms
mounts: {}
rules:
  - name: flood
    match:
      comm: ["dw-fullflood"]
      mount: [")" + disk.path() + R"("]
    when:
      write_rate: 20MiB/s
      for: 500ms
    action: kill
    kill_grace: 500ms
)",
                   {"--metrics-listen", "127.0.0.1:0"}, "", events_path);
    REQUIRE(agent.started());
    fill_up(events_path, event_disk.path() + "/filler");

    // Enforcement does not wait for the disk: the flood dies.
    auto flood = start_writer(disk.path() + "/flood", 1024 * kMiB, "dw-fullflood",
                              {"--rate", std::to_string(64 * kMiB)});
    const auto flood_status = flood.wait(std::chrono::seconds(30));
    REQUIRE(flood_status);
    CHECK((*flood_status == 128 + SIGTERM || *flood_status == 128 + SIGKILL));

    // Its runaway and kill events could not be written: counted, in status and /metrics.
    const std::string sink_name = "file:" + events_path;
    std::optional<json> sink;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    do {
        sink = sink_status(agent, sink_name);
        if (sink && sink->at("dropped").get<long long>() >= 2)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    REQUIRE(sink);
    INFO(sink->dump());
    CHECK(sink->at("dropped").get<long long>() >= 2);  // runaway + kill at least
    CHECK_THAT(sink->at("last_error").get<std::string>(), Catch::Contains("No space left on device"));
    auto status = status_of(agent);
    REQUIRE(status);
    httplib::Client client("127.0.0.1", status->at("metrics_port").get<int>());
    auto page = client.Get("/metrics");
    REQUIRE(page);
    CHECK(metric_value(page->body, "ebpf_diskwatch_sink_events_dropped_total{sink=\"" + sink_name + "\"}") >= 2);
    // Said on stderr, once for the episode, not once per event.
    CHECK(agent.wait_for_stderr("events are dropped", std::chrono::seconds(10)));

    // Room again: the next event is written, and the agent says it writes again.
    fs::remove(event_disk.path() + "/filler");
    agent.signal(SIGHUP);
    CHECK(agent.wait_for([](const json &e) { return e.value("event", "") == "policy.reload"; },
                         std::chrono::seconds(20)));
    CHECK(agent.wait_for_stderr("writing again", std::chrono::seconds(10)));
    REQUIRE(agent.stop() == 0);
    const std::string err = agent.stderr_text();
    INFO(err);
    CHECK(count_of(err, "events are dropped") == 1);
    // Every line in the file is one whole event: a write cut short by the full
    // disk left nothing behind; the flood's events are missing (counted), never torn.
    const auto events = parse_ndjson(events_path);
    CHECK(count_events(events, "policy.reload") == 1);
    CHECK(count_events(events, "agent.stop") == 1);
    for (const auto &event : events)
        if (event.value("event", "") == "agent.stop")
            CHECK(event.at("events_dropped").get<long long>() >= 2);
    for (const auto &event : events)
        CHECK_FALSE(is_kill_of(event, flood.pid()));
}

TEST_CASE("with the metrics port taken the agent refuses to start, naming the address", "[security][faults][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    // Someone else listens on the port.
    const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(taken >= 0);
    sockaddr_in address {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(taken, reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(taken, 4) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(taken, reinterpret_cast<sockaddr *>(&address), &length) == 0);
    const std::string listen = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

    ScratchDir dir;
    const std::string events_path = dir.path() + "/events.json";
    const std::string state_dir = dir.path() + "/state";
    auto agent = ChildProcess::start({DW_BINARY, "agent", "--json-out", events_path, "--state-dir", state_dir,
                                      "--metrics-listen", listen});
    const auto status = agent.wait(std::chrono::seconds(30));
    ::close(taken);
    INFO(agent.err());
    REQUIRE(status);
    CHECK(*status == 1);
    CHECK_THAT(agent.err(), Catch::Contains("--metrics-listen") && Catch::Contains(listen));
    // Never half-configured: it did not start, and left no control socket behind.
    CHECK(count_events(parse_ndjson(events_path), "agent.start") == 0);
    CHECK_FALSE(fs::exists(state_dir + "/control.sock"));
}

namespace {

// A process of this test, killed and reaped however the test ends.
struct ForkedChild {
    pid_t pid = -1;
    ~ForkedChild()
    {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

// clone3 with set_tid: a new child that gets exactly `pid` (root may ask).
pid_t fork_with_pid(pid_t pid)
{
    // struct clone_args up to set_tid_size (CLONE_ARGS_SIZE_VER1, Linux 5.5),
    // spelled out here: <linux/sched.h> clashes with glibc's <sched.h>.
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
    } args {};
    args.exit_signal = SIGCHLD;
    pid_t wanted[1] = {pid};
    args.set_tid = reinterpret_cast<uint64_t>(wanted);
    args.set_tid_size = 1;
    return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof(args)));
}

volatile sig_atomic_t g_got_sigterm = 0;
int g_report_fd = -1;

void note_sigterm(int)
{
    g_got_sigterm = 1;
    const char byte = 'T';
    (void)!::write(g_report_fd, &byte, 1);
}

// In a child: named `comm`, reports SIGTERM on `report_fd`, exits when the
// test closes the write end of the `go` pipe (the child closes its own copy
// first); writes 64 KiB every millisecond to `file` until SIGTERM when `file`
// is given.
[[noreturn]] void child_body(const char *comm, int report_fd, const int go[2], const char *file)
{
    ::close(go[1]);
    const int go_fd = go[0];
    ::prctl(PR_SET_NAME, comm, 0, 0, 0);
    g_report_fd = report_fd;
    struct sigaction action {};
    action.sa_handler = note_sigterm;
    ::sigaction(SIGTERM, &action, nullptr);
    if (file) {
        static char buffer[65536];
        const int fd = ::open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        while (fd >= 0 && !g_got_sigterm) {
            if (::pwrite(fd, buffer, sizeof(buffer), 0) < 0)
                break;
            ::usleep(1000);
        }
    }
    char byte = 0;
    while (::read(go_fd, &byte, 1) < 0) {
    }
    _exit(0);
}

bool wait_readable(int fd, int timeout_ms)
{
    pollfd entry {fd, POLLIN, 0};
    return ::poll(&entry, 1, timeout_ms) == 1;
}

}  // namespace

TEST_CASE("a target whose pid is recycled between SIGTERM and SIGKILL is never mis-hit: the pidfd holds",
          "[security][faults][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    AgentRun agent(R"(interval: 250ms
mounts: {}
rules:
  - name: flood
    match:
      comm: ["dw-recycled"]
      mount: [")" + disk.path() + R"("]
    when:
      write_rate: 10MiB/s
      for: 500ms
    action: kill
    kill_grace: 2s
)");
    REQUIRE(agent.started());
    // Whatever happens, the agent is not left stopped.
    struct Resume {
        const AgentRun &agent;
        ~Resume() { agent.signal(SIGCONT); }
    } resume {agent};

    int a_report[2], a_go[2], b_report[2], b_go[2];
    REQUIRE(::pipe2(a_report, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(a_go, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(b_report, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(b_go, O_CLOEXEC) == 0);
    const std::string file = disk.path() + "/flood";

    // A floods; the agent's kill starts with SIGTERM, which A notes and outlives.
    ForkedChild a;
    a.pid = ::fork();
    REQUIRE(a.pid >= 0);
    if (a.pid == 0)
        child_body("dw-recycled", a_report[1], a_go, file.c_str());
    REQUIRE(wait_readable(a_report[0], 30000));
    const pid_t recycled = a.pid;
    // Between SIGTERM and the SIGKILL due 2 s later: the agent is held still,
    // A exits, and a new process of the same name gets A's pid.
    agent.signal(SIGSTOP);
    ::close(a_go[1]);
    REQUIRE(::waitpid(a.pid, nullptr, 0) == a.pid);
    a.pid = -1;
    ForkedChild b;
    b.pid = fork_with_pid(recycled);
    INFO("clone3 set_tid " << recycled << ": " << std::strerror(errno));
    REQUIRE(b.pid >= 0);
    if (b.pid == 0)
        child_body("dw-recycled", b_report[1], b_go, nullptr);
    REQUIRE(b.pid == recycled);
    std::this_thread::sleep_for(std::chrono::seconds(3));  // the SIGKILL is overdue now
    agent.signal(SIGCONT);
    std::this_thread::sleep_for(std::chrono::seconds(4));  // the agent's loop ticks a hundred times

    // B got no signal: alive, and it saw no SIGTERM.
    INFO(agent.events_text());
    const pid_t reaped = ::waitpid(b.pid, nullptr, WNOHANG);
    CHECK(reaped == 0);
    if (reaped == b.pid)
        b.pid = -1;  // gone: its pid is no longer ours to signal
    CHECK(diskwatch::process_state(recycled) != 'Z');
    CHECK_FALSE(wait_readable(b_report[0], 0));
    // One kill, through the pidfd, SIGTERM only: no SIGKILL was sent to the pid.
    size_t kills = 0;
    for (const auto &event : agent.events())
        if (is_kill_of(event, recycled)) {
            ++kills;
            CHECK(event.at("mechanism") == "pidfd_send_signal");
            CHECK(event.at("signal") == "SIGTERM");
        }
    CHECK(kills == 1);
    ::close(b_go[1]);
    if (b.pid > 0) {
        CHECK(::waitpid(b.pid, nullptr, 0) == b.pid);
        b.pid = -1;
    }
    for (int fd : {a_report[0], a_report[1], a_go[0], b_report[0], b_report[1], b_go[0]})
        ::close(fd);
    REQUIRE(agent.stop() == 0);
}

namespace {

struct ScopedEnv {
    std::string name;
    ScopedEnv(std::string key, const std::string &value) : name(std::move(key))
    {
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

// In a child: named `comm`, writes 64 KiB to `file` and reports it on
// `report_fd`, then waits for a byte on `command_fd` and writes `then_bytes`
// more (1 MiB pwrites) and exits.
[[noreturn]] void write_then_flood(const char *comm, int report_fd, int command_fd, const char *file,
                                   long long then_bytes)
{
    ::prctl(PR_SET_NAME, comm, 0, 0, 0);
    static char buffer[1 << 20];
    const int fd = ::open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::pwrite(fd, buffer, 64 * 1024, 0) != 64 * 1024)
        _exit(1);
    const char ready = 'W';
    (void)!::write(report_fd, &ready, 1);
    char byte = 0;
    while (::read(command_fd, &byte, 1) < 0) {
    }
    for (long long written = 0; written < then_bytes; written += sizeof(buffer))
        if (::pwrite(fd, buffer, sizeof(buffer), 0) != static_cast<ssize_t>(sizeof(buffer)))
            _exit(1);
    _exit(0);
}

// Forks that exit at once: lifecycle records only, to fill the ring buffer.
void fork_storm(int count)
{
    for (int i = 0; i < count; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            ::waitpid(pid, nullptr, 0);
    }
}

// Waits (10 s at most) until /proc/<pid>/comm says `comm`.
bool wait_for_comm(pid_t pid, const std::string &comm)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        auto identity = diskwatch::read_process_identity(pid);
        if (identity && identity->comm == comm)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

bool is_warning_of(const json &event, const std::string &rule, int pid)
{
    return event.value("event", "") == "agent.warning" && event.value("rule", "") == rule &&
           event.contains("process") && event["process"].value("pid", 0) == pid;
}

}  // namespace

TEST_CASE("a same-named process on a recycled pid, started after the writer was first seen, is never signalled",
          "[security][faults][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    // docs/security.md row 19a. A writer's exit record is lost (a one-page
    // lifecycle ring buffer, filled while the agent is held still), so the
    // agent still holds the writer's pid as running, with the name and start
    // time it read when it first saw it; a process with the same name takes
    // the pid; the writer's bytes make a kill rule hold for that pid.
    ScopedEnv shrink("DISKWATCH_TEST_EVENTS_BYTES", std::to_string(::sysconf(_SC_PAGESIZE)));
    LoopMount disk(128);
    AgentRun agent(R"(interval: 250ms
mounts: {}
rules:
  - name: seen
    match:
      comm: ["dw-pid-identity"]
      mount: [")" + disk.path() + R"("]
    when:
      written: 4KiB
      within: 1m
    action: alert
  - name: flood
    match:
      comm: ["dw-pid-identity"]
      mount: [")" + disk.path() + R"("]
    when:
      written: 16MiB
      within: 1m
    action: kill
    kill_grace: 1s
)");
    REQUIRE(agent.started());
    // Whatever happens, the agent is not left stopped.
    struct Resume {
        const AgentRun &agent;
        ~Resume() { agent.signal(SIGCONT); }
    } resume {agent};

    int a_report[2], a_command[2], b_report[2], b_go[2];
    REQUIRE(::pipe2(a_report, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(a_command, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(b_report, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(b_go, O_CLOEXEC) == 0);
    struct ClosePipes {
        std::vector<int> fds;
        ~ClosePipes()
        {
            for (int fd : fds)
                if (fd >= 0)
                    ::close(fd);
        }
    } pipes {{a_report[0], a_report[1], a_command[0], a_command[1], b_report[0], b_report[1], b_go[0], b_go[1]}};
    const std::string file = disk.path() + "/flood";

    // A writes a little: the agent sees it (the alert names it), under the kill threshold.
    ForkedChild a;
    a.pid = ::fork();
    REQUIRE(a.pid >= 0);
    if (a.pid == 0)
        write_then_flood("dw-pid-identity", a_report[1], a_command[0], file.c_str(), 32 * kMiB);
    REQUIRE(wait_readable(a_report[0], 30000));
    const pid_t recycled = a.pid;
    const auto a_started = diskwatch::process_start_boot_s(recycled);
    REQUIRE(a_started);
    auto seen = agent.wait_for(
        [&](const json &event) {
            return event.value("event", "") == "action" && event.value("rule", "") == "seen" &&
                   event["process"].value("pid", 0) == recycled;
        },
        std::chrono::seconds(30));
    INFO(agent.events_text());
    REQUIRE(seen);
    CHECK(seen->at("process").at("comm") == "dw-pid-identity");

    // The agent held still: the ring buffer fills, then A floods and exits
    // (its exit record finds no room), and B, of the same name, gets A's pid.
    agent.signal(SIGSTOP);
    fork_storm(600);
    const char go = 'G';
    REQUIRE(::write(a_command[1], &go, 1) == 1);
    int a_status = 0;
    REQUIRE(::waitpid(a.pid, &a_status, 0) == a.pid);
    a.pid = -1;
    REQUIRE(WIFEXITED(a_status));
    REQUIRE(WEXITSTATUS(a_status) == 0);
    ForkedChild b;
    b.pid = fork_with_pid(recycled);
    INFO("clone3 set_tid " << recycled << ": " << std::strerror(errno));
    REQUIRE(b.pid >= 0);
    if (b.pid == 0)
        child_body("dw-pid-identity", b_report[1], b_go, nullptr);
    REQUIRE(b.pid == recycled);
    REQUIRE(wait_for_comm(recycled, "dw-pid-identity"));
    const auto b_started = diskwatch::process_start_boot_s(recycled);
    REQUIRE(b_started);
    REQUIRE_FALSE(diskwatch::same_start(*a_started, *b_started));
    agent.signal(SIGCONT);

    // The kill rule holds for the pid; the enforcer finds another process
    // there (same name, later start) and says so instead of signalling it.
    auto refused = agent.wait_for(
        [&](const json &event) { return is_warning_of(event, "flood", recycled) || is_kill_of(event, recycled); },
        std::chrono::seconds(30));
    INFO(agent.events_text());
    REQUIRE(refused);
    CHECK(is_warning_of(*refused, "flood", recycled));
    CHECK_THAT(refused->value("warning", ""), Catch::Contains("the pid was reused"));
    // Its exit record was lost, as the test meant (else the row is an exited
    // writer, never acted on, and the check above would not be reached).
    CHECK(agent.wait_for(
        [](const json &event) {
            return event.value("event", "") == "agent.warning" &&
                   event.value("warning", "").find("ring buffer") != std::string::npos;
        },
        std::chrono::seconds(10)));
    // B got no signal: no SIGTERM noted within a kill_grace and more, and alive (no SIGKILL).
    CHECK_FALSE(wait_readable(b_report[0], 3000));
    const pid_t reaped = ::waitpid(b.pid, nullptr, WNOHANG);
    CHECK(reaped == 0);
    if (reaped == b.pid)
        b.pid = -1;  // gone: its pid is no longer ours to signal
    for (const auto &event : agent.events())
        CHECK_FALSE(is_kill_of(event, recycled));
    ::close(b_go[1]);
    pipes.fds[7] = -1;
    if (b.pid > 0) {
        int b_status = 0;
        CHECK(::waitpid(b.pid, &b_status, 0) == b.pid);
        b.pid = -1;
        CHECK(WIFEXITED(b_status));
    }
    REQUIRE(agent.stop() == 0);
}

namespace {

// PATH.keep ... PATH.1, PATH: every event in the order it was written.
std::vector<json> rotated_events(const std::string &path, unsigned keep, bool strict)
{
    std::vector<json> events;
    for (unsigned i = keep; i >= 1; --i)
        if (fs::exists(path + "." + std::to_string(i)))
            for (auto &event : parse_ndjson(path + "." + std::to_string(i), strict))
                events.push_back(std::move(event));
    for (auto &event : parse_ndjson(path, strict))
        events.push_back(std::move(event));
    return events;
}

}  // namespace

TEST_CASE("the agent rotates its event file at --json-max-size, keeping --json-keep files of whole events",
          "[faults][agent][sinks][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    AgentRun agent("interval: 250ms\nmounts: {}\nrules: []\n", {"--json-max-size", "1KiB", "--json-keep", "2"});
    REQUIRE(agent.started());
    const std::string path = agent.events_path();
    constexpr size_t kReloads = 60;  // about 150 bytes each: several rotations
    auto read_all = [&] { return rotated_events(path, 2, false); };
    for (size_t i = 0; i < kReloads; ++i)
        REQUIRE(reload_and_wait(agent, read_all));
    REQUIRE(agent.stop() == 0);
    INFO(agent.stderr_text());
    CHECK(fs::exists(path + ".1"));
    CHECK(fs::exists(path + ".2"));
    CHECK_FALSE(fs::exists(path + ".3"));  // the oldest are dropped
    for (const auto &file : {path, path + ".1", path + ".2"})
        CHECK(fs::file_size(file) <= 1024);
    // What is kept is the newest, in order, whole: agent.stop last.
    const auto events = rotated_events(path, 2, true);
    REQUIRE_FALSE(events.empty());
    CHECK(events.back().at("event") == "agent.stop");
    CHECK(events.back().at("events_dropped") == 0);
    CHECK(count_events(events, "agent.start") == 0);  // rotated away long ago
    for (size_t i = 1; i < events.size(); ++i)
        CHECK(events[i - 1].at("ts").get<std::string>() <= events[i].at("ts").get<std::string>());
}

TEST_CASE("logrotate's convention: the file moved away, SIGHUP, the new file gets the next events, none lost",
          "[faults][agent][sinks][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    AgentRun agent("interval: 250ms\nmounts: {}\nrules: []\n");
    REQUIRE(agent.started());
    const std::string path = agent.events_path();
    const std::string moved = path + ".old";
    auto both = [&] {
        auto events = fs::exists(moved) ? parse_ndjson(moved, false) : std::vector<json>{};
        for (auto &event : parse_ndjson(path, false))
            events.push_back(std::move(event));
        return events;
    };
    REQUIRE(reload_and_wait(agent, both));
    fs::rename(path, moved);  // what logrotate does, then it sends SIGHUP
    REQUIRE(reload_and_wait(agent, both));
    REQUIRE(reload_and_wait(agent, both));
    REQUIRE(agent.stop() == 0);
    INFO(agent.stderr_text());
    const auto old_events = parse_ndjson(moved);
    const auto new_events = parse_ndjson(path);
    CHECK(count_events(old_events, "agent.start") == 1);
    CHECK(count_events(old_events, "policy.reload") == 1);
    // The reload event is emitted after the reopen: both answers to the
    // SIGHUPs after the move are in the new file, and the stop too.
    CHECK(count_events(new_events, "policy.reload") == 2);
    REQUIRE(count_events(new_events, "agent.stop") == 1);
    CHECK(new_events.back().at("events_dropped") == 0);
    CHECK(old_events.size() + new_events.size() == 5);  // start, 3 reloads, stop: nothing lost, nothing twice
}

namespace {

// The value of the first sample whose series starts with `prefix`, or -1.
double metric_with_prefix(const std::string &page, const std::string &prefix)
{
    std::istringstream lines(page);
    std::string line;
    while (std::getline(lines, line))
        if (line.rfind(prefix, 0) == 0)
            return std::stod(line.substr(line.rfind(' ') + 1));
    return -1;
}

}  // namespace

TEST_CASE("agent soak: short-lived writers, exec storms, killed floods and policy reloads, exact totals, "
          "bounded memory",
          "[soak][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);        // only the short-lived writers write here: its total is known exactly
    LoopMount flood_disk(256);  // the floods
    AgentRun agent(R"(interval: 250ms
mounts: {}
rules:
  - name: flood
    match:
      comm: ["dw-soakflood"]
      mount: [")" + flood_disk.path() + R"("]
    when:
      write_rate: 20MiB/s
      for: 500ms
    action: kill
    kill_grace: 500ms
  - name: never
    match:
      comm: ["dw-soak"]
    when:
      write_rate: 1GiB/s
      for: 1s
    action: alert
)",
                   {"--metrics-listen", "127.0.0.1:0"});
    REQUIRE(agent.started());
    constexpr auto kSoak = std::chrono::seconds(90);
    constexpr int kInFlight = 8;
    constexpr int kRate = 100;  // short-lived writers a second
    const auto start = std::chrono::steady_clock::now();
    std::atomic<bool> done {false};

    // An exec storm: /bin/true, about 50 a second, for the whole soak.
    std::atomic<int> execs {0}, exec_failures {0};
    std::thread exec_storm([&] {
        char true_path[] = "/bin/true";
        char *const argv[] = {true_path, nullptr};
        while (!done) {
            pid_t pid = 0;
            if (::posix_spawn(&pid, true_path, nullptr, nullptr, argv, environ) != 0) {
                ++exec_failures;
                continue;
            }
            int status = 0;
            ::waitpid(pid, &status, 0);
            ++execs;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });

    // Floods the policy kills, and policy reloads, one of each every 12 s.
    std::vector<pid_t> floods;
    std::vector<int> flood_statuses;
    std::atomic<int> reloads {0}, reloads_unanswered {0};
    std::thread chaos([&] {
        while (!done && std::chrono::steady_clock::now() - start < kSoak - std::chrono::seconds(12)) {
            std::this_thread::sleep_for(std::chrono::seconds(10));
            const std::string flood_file = flood_disk.path() + "/flood";
            auto flood = start_writer(flood_file, 1024 * kMiB, "dw-soakflood",
                                      {"--rate", std::to_string(64 * kMiB)});
            const auto status = flood.wait(std::chrono::seconds(60));
            std::error_code ec;
            fs::remove(flood_file, ec);  // room for the next one
            floods.push_back(flood.pid());
            flood_statuses.push_back(status.value_or(-1));
            const size_t before = count_events(agent.events(), "policy.reload");
            agent.signal(SIGHUP);
            ++reloads;
            if (!agent.wait_for(
                    [&](const json &) { return count_events(agent.events(), "policy.reload") > before; },
                    std::chrono::seconds(20)))
                ++reloads_unanswered;
        }
    });

    // fork + write + exit, 8 at a time, paced to kRate a second.
    long long rss_early = -1;
    const auto writers = run_short_lived_writers(disk.path() + "/soak", "dw-soak", kSoak, kRate, kInFlight,
                                                 [&](std::chrono::steady_clock::duration elapsed) {
                                                     if (rss_early < 0 && elapsed > std::chrono::seconds(15))
                                                         rss_early = vm_rss_kib(agent.pid());
                                                 });
    const long long expected = writers.bytes_written;
    done = true;
    exec_storm.join();
    chaos.join();
    std::this_thread::sleep_for(std::chrono::seconds(2));  // a few refreshes see the last writes
    const long long rss_late = vm_rss_kib(agent.pid());

    auto status = status_of(agent);
    REQUIRE(status);
    INFO(status->dump());
    httplib::Client client("127.0.0.1", status->at("metrics_port").get<int>());
    auto page = client.Get("/metrics");
    REQUIRE(page);
    const double mount_total =
        metric_with_prefix(page->body, "ebpf_diskwatch_mount_written_bytes_total{mountpoint=\"" + disk.path() + "\"");
    REQUIRE(agent.stop(std::chrono::seconds(30)) == 0);
    const auto events = agent.events();

    INFO(writers.spawned << " writers (" << writers.failed << " failed), " << execs << " execs, " << floods.size() << " floods, "
                  << reloads << " reloads; agent RSS " << rss_early << " KiB after 15 s, " << rss_late
                  << " KiB at the end");
    CHECK(writers.spawned >= 4000);
    CHECK(writers.failed == 0);
    CHECK(execs >= 1000);
    CHECK(exec_failures == 0);
    // Exact totals: every byte of every short-lived writer, counted once.
    CHECK(static_cast<long long>(mount_total) == expected);
    // No lifecycle record, event or bucket lost.
    const auto &drops = status->at("drops");
    CHECK(drops.at("ringbuf_full") == 0);
    CHECK(drops.at("writers_map_full") == 0);
    CHECK(drops.at("rate_bucket_full") == 0);
    for (const auto &sink : status->at("sinks"))
        CHECK(sink.at("dropped") == 0);
    // Every flood killed, once each; no one else acted on.
    CHECK(floods.size() >= 5);
    for (size_t i = 0; i < floods.size(); ++i) {
        INFO("flood pid " << floods[i]);
        CHECK((flood_statuses[i] == 128 + SIGTERM || flood_statuses[i] == 128 + SIGKILL));
        size_t kills = 0;
        for (const auto &event : events)
            kills += is_kill_of(event, floods[i]) && event.at("signal") == "SIGTERM";
        CHECK(kills == 1);
    }
    for (const auto &event : events)
        if (event.value("event", "") == "action" || event.value("event", "") == "runaway")
            CHECK(event.at("process").at("comm") == "dw-soakflood");
    // Every reload answered, every one ok.
    CHECK(reloads_unanswered == 0);
    CHECK(count_events(events, "policy.reload") == static_cast<size_t>(reloads));
    for (const auto &event : events)
        if (event.value("event", "") == "policy.reload")
            CHECK(event.at("ok") == true);
    REQUIRE(count_events(events, "agent.stop") == 1);
    CHECK(events.back().at("events_dropped") == 0);
    // Bounded memory: what the agent keeps per process and per episode is
    // pruned; 16 MiB of growth over the soak is a generous bound.
    REQUIRE(rss_early > 0);
    REQUIRE(rss_late > 0);
    CHECK(rss_late < rss_early + 16 * 1024);
}

TEST_CASE("bad --json-max-size values are refused at start, naming the option", "[faults][agent][sinks][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ScratchDir dir;
    const std::string out = dir.path() + "/events.json";
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--json-max-size", "10MiB"}, "--json-max-size needs --json-out"},
        {{"--json-out", out, "--json-max-size", "100"}, "at least 1KiB"},
        {{"--json-out", out, "--json-max-size", "12parsecs"}, "unknown size unit"},
    };
    for (const auto &[arguments, expected] : cases) {
        std::vector<std::string> argv = {DW_BINARY, "agent", "--state-dir", dir.path() + "/state"};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        auto agent = ChildProcess::start(argv);
        const auto status = agent.wait(std::chrono::seconds(30));
        INFO(agent.err());
        REQUIRE(status);
        CHECK(*status == 2);
        CHECK_THAT(agent.err(), Catch::Contains("--json-max-size") && Catch::Contains(expected));
        CHECK(agent.out().empty());  // nothing started: no agent.start on stdout
    }
}

namespace {

// strace, which injects the faults of the next test into the agent's own
// read(2) calls; "" when missing: then under CI=true the test FAILs, elsewhere
// it is skipped with a warning (as bpf_tests_can_run() does for root).
std::string strace_or_skip()
{
    const std::string strace = find_tool("strace");
    if (!strace.empty())
        return strace;
    const char *ci = std::getenv("CI");
    if (ci && std::string(ci) == "true")
        FAIL("strace is missing: the fault-injection test needs it; under CI=true it fails instead of skipping");
    WARN("strace is missing: fault-injection test skipped (under CI=true this fails)");
    return "";
}

// /proc/<pid>/comm and /proc/<pid>/stat for the next `count` pids the kernel
// will hand out (from ns_last_pid, wrapping at pid_max as the kernel does, to
// 300): the writers the test starts next get pids among them, whoever else
// takes some.
std::vector<std::string> next_pids_comm_and_stat(int count)
{
    long last = 0, pid_max = 0;
    std::ifstream("/proc/sys/kernel/ns_last_pid") >> last;
    std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
    REQUIRE(last > 0);
    REQUIRE(pid_max > 300);
    std::vector<std::string> paths;
    long pid = last;
    for (int i = 0; i < count; ++i) {
        pid = pid + 1 >= pid_max ? 300 : pid + 1;
        paths.push_back("/proc/" + std::to_string(pid) + "/comm");
        paths.push_back("/proc/" + std::to_string(pid) + "/stat");
    }
    return paths;
}

}  // namespace

TEST_CASE("reads of /proc/PID/comm and stat failing with ESRCH (strace fault injection) never end the agent",
          "[security][faults][agent][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    const std::string strace_path = strace_or_skip();
    if (strace_path.empty())
        return;
    LoopMount disk(256);
    AgentRun agent(PolicyYaml()
                       .interval("250ms")
                       .rule("flood")
                       .match("comm", {"dw-injflood"})
                       .match("mount", {disk.path()})
                       .when("20MiB/s", "500ms")
                       .action("kill")
                       .set("kill_grace", "500ms"));
    REQUIRE(agent.started());
    ScratchDir trace_dir;
    const std::string trace_path = trace_dir.path() + "/strace.out";
    {
        // Every read(2) by the agent of the comm or stat of a process the
        // test starts next fails with ESRCH, as when the process is reaped
        // between the agent's open and read.
        std::vector<std::string> argv = {strace_path, "-f", "-y", "-o", trace_path, "-e", "trace=read",
                                         "-e", "inject=read:error=ESRCH", "-p", std::to_string(agent.pid())};
        for (const auto &path : next_pids_comm_and_stat(1500)) {
            argv.push_back("-P");
            argv.push_back(path);
        }
        auto strace = ChildProcess::start(argv);
        REQUIRE(strace.wait_for_stderr("attached", std::chrono::seconds(20)));
        // Churn: writers that live through a refresh or two (so the agent
        // reads their /proc files), then exit; eight at a time for 8 s.
        const auto churn_end = std::chrono::steady_clock::now() + std::chrono::seconds(8);
        int churned = 0;
        while (std::chrono::steady_clock::now() < churn_end) {
            std::vector<ChildProcess> writers;
            for (int i = 0; i < 8; ++i)
                writers.push_back(start_writer(disk.path() + "/churn" + std::to_string(i), 64 * 1024, "dw-injchurn",
                                               {"--linger-ms", "400"}));
            for (auto &writer : writers)
                writer.wait(std::chrono::seconds(30));
            churned += 8;
        }
        strace.signal(SIGINT);  // detaches from the agent, which goes on untraced
        strace.wait(std::chrono::seconds(20));
        INFO("writers: " << churned << "; strace: " << strace.err());
        const std::string trace = read_text(trace_path);
        INFO("the trace:\n" << trace.substr(0, 4000));
        // The faults reached the agent: its reads of comm (and stat) failed.
        CHECK(count_of(trace, "ESRCH (No such process) (INJECTED)") > 0);
    }
    // Still alive, still answering, still acting.
    const char state = diskwatch::process_state(agent.pid());
    if (state == 0 || state == 'Z') {
        const auto status = agent.stop();
        FAIL("the agent died (exit status " << status.value_or(-1) << "): " << agent.stderr_text());
    }
    REQUIRE(status_of(agent));
    auto flood = start_writer(disk.path() + "/flood", 1024 * kMiB, "dw-injflood", {"--rate", std::to_string(64 * kMiB)});
    const auto flood_status = flood.wait(std::chrono::seconds(30));
    REQUIRE(flood_status);
    CHECK((*flood_status == 128 + SIGTERM || *flood_status == 128 + SIGKILL));
    CHECK(agent.wait_for([&](const json &event) { return is_kill_of(event, flood.pid()); }, std::chrono::seconds(20)));
    CHECK(agent.stop() == 0);
}
