// `top` attached to a running agent (docs/control.md, docs/cli.md): a real
// agent with its control socket, a real `top -b --json` that reads the
// agent's counters instead of loading the BPF programs a second time, and the
// fallback to its own programs when no agent answers. Contract: docs/top-json.md
// ("source", "agent_action").
#include <dirent.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;

// The BPF objects a process holds: programs, links and maps show in /proc/PID/fd
// as anon inodes. A process that loaded the programs holds them as long as it
// runs; one that reads the agent's counters holds none.
size_t bpf_fds_of(pid_t pid)
{
    size_t count = 0;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR *fds = ::opendir(dir.c_str());
    if (!fds)
        return 0;
    while (const dirent *entry = ::readdir(fds)) {
        char target[256] = {};
        const std::string link = dir + "/" + entry->d_name;
        const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
        if (n > 0 && std::string(target, static_cast<size_t>(n)).rfind("anon_inode:bpf", 0) == 0)
            ++count;
    }
    ::closedir(fds);
    return count;
}

struct TopChild {
    ChildProcess process;
    std::vector<json> refreshes;
};

ChildProcess start_top(const std::vector<std::string> &extra)
{
    std::vector<std::string> argv = {DW_BINARY, "top", "-b", "--json", "-d", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return ChildProcess::start(argv);
}

std::vector<json> refreshes_of(const std::string &out)
{
    std::vector<json> refreshes;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line))
        if (!line.empty())
            refreshes.push_back(json::parse(line));
    return refreshes;
}

long long bytes_for(const std::vector<json> &refreshes, int pid, const std::string &mount)
{
    long long total = 0;
    for (const auto &refresh : refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == pid && row.at("mount") == mount)
                total += row.at("write_bytes").get<long long>();
    return total;
}

}  // namespace

TEST_CASE("top attaches to a running agent: its rows, exact bytes, and no BPF programs of its own",
          "[top][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    AgentRun agent("interval: 250ms\nrules: []\n");
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    const std::string socket = agent.state_dir() + "/control.sock";
    REQUIRE(bpf_fds_of(agent.pid()) > 0);  // the agent holds the programs: the probe sees them

    auto top = start_top({"-n", "4", "--control-socket", socket});
    REQUIRE(top.wait_for_stderr("attached", std::chrono::seconds(30)));
    INFO("top stderr: " << top.err());
    CHECK(top.err().find("attached to the agent (pid " + std::to_string(agent.pid()) + ")") != std::string::npos);
    CHECK(bpf_fds_of(top.pid()) == 0);

    const auto writer = run_writer({"--mode", "write", "--file", disk.path() + "/attached.log", "--bytes",
                                    std::to_string(24 * kMiB), "--comm", "dw-attached"});
    REQUIRE(writer.written == 24 * kMiB);
    CHECK(bpf_fds_of(top.pid()) == 0);  // still none while it refreshes
    const auto status = top.wait(std::chrono::seconds(60));
    REQUIRE(status == 0);
    const auto refreshes = refreshes_of(top.out());
    REQUIRE(refreshes.size() == 4);
    for (const auto &refresh : refreshes) {
        CHECK(refresh.at("source") == "agent");
        CHECK(refresh.at("by") == "process");
    }
    // Every byte once: the intervals of top's refreshes add up to the writer's bytes.
    const long long measured = bytes_for(refreshes, writer.pid, disk.path());
    INFO("measured " << measured << " bytes via the agent, written " << writer.written);
    CHECK(std::llabs(measured - writer.written) <= writer.written / 100);
    // And the last refresh's total since top started says the same.
    const auto &last = refreshes.back();
    long long total = 0;
    for (const auto &row : last.at("rows"))
        if (row.at("pid") == writer.pid)
            total += row.at("total_bytes").get<long long>();
    if (total == 0) {  // the writer was idle in the last interval: its row only with -a; use the sum
        total = measured;
    }
    CHECK(std::llabs(total - writer.written) <= writer.written / 100);
    for (const auto &refresh : refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == writer.pid) {
                CHECK(row.at("comm") == "dw-attached");
                CHECK(row.at("fstype") == "ext4");
                CHECK(row.at("agent_action").is_null());  // no rule: the agent does nothing to it
            }
}

TEST_CASE("top attached groups the agent's rows by cgroup and by mount, accumulated", "[top][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    AgentRun agent("interval: 250ms\nrules: []\n");
    REQUIRE(agent.started());
    const std::string socket = agent.state_dir() + "/control.sock";
    for (const std::string by : {"mount", "cgroup"}) {
        DYNAMIC_SECTION("by " << by)
        {
            WriterResult writer;
            auto run = run_top_while({"--by", by, "-a", "--control-socket", socket}, 2, 1.5, [&] {
                writer = run_writer({"--mode", "write", "--file", disk.path() + "/" + by + ".log", "--bytes",
                                     std::to_string(8 * kMiB), "--comm", "dw-grouped"});
            });
            INFO(run.stderr_text);
            REQUIRE(run.exit_status == 0);
            REQUIRE(run.refreshes.size() == 2);
            const auto &last = run.refreshes.back();
            CHECK(last.at("source") == "agent");
            CHECK(last.at("by") == by);
            long long on_disk = 0;
            for (const auto &row : last.at("rows"))
                if (row.at("mount") == disk.path())
                    on_disk += row.at("total_bytes").get<long long>();
            INFO(last.dump());
            CHECK(std::llabs(on_disk - writer.written) <= writer.written / 100);
            for (const auto &mount : last.at("mounts"))
                if (mount.at("mount") == disk.path())
                    CHECK(std::llabs(mount.at("total_bytes").get<long long>() - writer.written) <= writer.written / 100);
        }
    }
}

TEST_CASE("with no agent answering top loads its own programs, and so does --local with an agent running",
          "[top][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    ScratchDir nowhere;
    SECTION("no socket")
    {
        auto top = start_top({"-n", "3", "--control-socket", nowhere.path() + "/control.sock"});
        REQUIRE(top.wait_for_stderr("refreshing every", std::chrono::seconds(30)));
        INFO("top stderr: " << top.err());
        CHECK(top.err().find("no agent to attach to") != std::string::npos);
        CHECK(bpf_fds_of(top.pid()) > 0);
        REQUIRE(top.wait(std::chrono::seconds(60)) == 0);
        const auto refreshes = refreshes_of(top.out());
        REQUIRE(refreshes.size() == 3);
        for (const auto &refresh : refreshes)
            CHECK(refresh.at("source") == "local");
    }
    SECTION("a stale socket: connection refused")
    {
        // What an agent that died leaves behind: a socket file nobody listens on.
        const std::string path = nowhere.path() + "/stale.sock";
        {
            const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            REQUIRE(fd >= 0);
            sockaddr_un address {};
            address.sun_family = AF_UNIX;
            std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
            REQUIRE(::bind(fd, reinterpret_cast<const sockaddr *>(&address), sizeof(address)) == 0);
            ::close(fd);
        }
        auto top = start_top({"-n", "1", "--control-socket", path});
        REQUIRE(top.wait_for_stderr("refreshing every", std::chrono::seconds(30)));
        INFO("top stderr: " << top.err());
        CHECK(top.err().find("connection refused") != std::string::npos);
        CHECK(bpf_fds_of(top.pid()) > 0);
        REQUIRE(top.wait(std::chrono::seconds(60)) == 0);
        const auto refreshes = refreshes_of(top.out());
        REQUIRE(refreshes.size() == 1);
        CHECK(refreshes[0].at("source") == "local");
    }
    SECTION("--local with an agent running")
    {
        AgentRun agent("rules: []\n");
        REQUIRE(agent.started());
        auto top = start_top({"-n", "2", "--local", "--control-socket", agent.state_dir() + "/control.sock"});
        REQUIRE(top.wait_for_stderr("refreshing every", std::chrono::seconds(30)));
        INFO("top stderr: " << top.err());
        CHECK(top.err().find("attached to the agent") == std::string::npos);
        CHECK(bpf_fds_of(top.pid()) > 0);
        REQUIRE(top.wait(std::chrono::seconds(60)) == 0);
        for (const auto &refresh : refreshes_of(top.out()))
            CHECK(refresh.at("source") == "local");
    }
}

TEST_CASE("top attached marks the rows the agent throttles", "[top][attach][enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    AgentRun agent(throttle_policy("dw-marked"));
    REQUIRE(agent.started());
    auto writer = start_writer(disk.path() + "/marked.log", 400 * kMiB, "dw-marked",
                               {"--pace", std::to_string(16 * kMiB)});
    auto throttle = agent.wait_for([&](const json &e) {
        return e.value("event", "") == "action" && e.value("action", "") == "throttle";
    }, std::chrono::seconds(15));
    INFO(agent.events_text());
    REQUIRE(throttle);
    auto run = run_top_while({"-a", "--control-socket", agent.state_dir() + "/control.sock"}, 3, 1, [] {});
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    bool marked = false;
    for (const auto &refresh : run.refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == writer.pid())
                marked = marked || row.at("agent_action") == "throttle";
    CHECK(marked);
}

TEST_CASE("doctor says whether top will read an agent's counters or load its own", "[top][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    AgentRun agent("rules: []\n");
    REQUIRE(agent.started());
    std::string output;
    REQUIRE(run({DW_BINARY, "doctor", "--json", "--control-socket", agent.state_dir() + "/control.sock"}, &output) == 0);
    INFO(output);
    auto doc = json::parse(output.substr(output.find('{')));
    CHECK(doc.at("agent").at("running") == true);
    CHECK(doc.at("agent").at("pid") == agent.pid());
    CHECK(doc.at("agent").at("top_source") == "agent");
    ScratchDir nowhere;
    output.clear();
    REQUIRE(run({DW_BINARY, "doctor", "--json", "--control-socket", nowhere.path() + "/control.sock"}, &output) == 0);
    doc = json::parse(output.substr(output.find('{')));
    CHECK(doc.at("agent").at("running") == false);
    CHECK(doc.at("agent").at("top_source") == "local");
    CHECK(doc.at("agent").at("error").get<std::string>().find("no agent running") != std::string::npos);
}

namespace {

// An overlay mount (lower, upper and work directories on `disk`), unmounted
// however the test ends.
struct OverlayMount {
    std::string merged;
    explicit OverlayMount(const std::string &base) : merged(base + "/merged")
    {
        for (const char *dir : {"/lower", "/upper", "/work", "/merged"})
            std::filesystem::create_directories(base + dir);
        const std::string options = "lowerdir=" + base + "/lower,upperdir=" + base + "/upper,workdir=" + base + "/work";
        REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) == 0);
    }
    ~OverlayMount() { ::umount2(merged.c_str(), MNT_DETACH); }
    OverlayMount(const OverlayMount &) = delete;
    OverlayMount &operator=(const OverlayMount &) = delete;
};

bool lists_mount(const json &refresh, const std::string &mount_point)
{
    for (const auto &mount : refresh.at("mounts"))
        if (mount.at("mount") == mount_point)
            return true;
    return false;
}

}  // namespace

TEST_CASE("attached, top leaves out the overlays and pseudo mounts the agent lists, as local top does, unless "
          "--all-mounts",
          "[top][attach][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    OverlayMount overlay(disk.path());
    // The agent lists everything: what top shows is top's choice.
    AgentRun agent("interval: 250ms\nrules: []\n", {"--all-mounts"});
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    const std::string socket = agent.state_dir() + "/control.sock";
    for (const bool all : {false, true}) {
        std::vector<std::string> extra = {"-n", "1", "--control-socket", socket};
        if (all)
            extra.push_back("--all-mounts");
        auto top = start_top(extra);
        REQUIRE(top.wait(std::chrono::seconds(60)) == 0);
        INFO("top stderr: " << top.err());
        const auto refreshes = refreshes_of(top.out());
        REQUIRE(refreshes.size() == 1);
        const auto &refresh = refreshes.front();
        INFO(refresh.at("mounts").dump());
        CHECK(refresh.at("source") == "agent");
        CHECK(lists_mount(refresh, disk.path()));  // the disk under it, either way
        CHECK(lists_mount(refresh, overlay.merged) == all);
        if (!all)
            for (const auto &mount : refresh.at("mounts"))
                for (const char *pseudo : {"overlay", "proc", "sysfs", "cgroup", "cgroup2", "tracefs", "bpf"})
                    CHECK(mount.at("fstype") != pseudo);
    }
}
