// Faults and load in top / WriteMonitor (docs/security.md): a full writer map
// and an overflowing lifecycle ring buffer are counted in `drops` and never
// crash top or corrupt a count; a soak of thousands of short-lived writers
// ends with exact totals and bounded memory. The maps are shrunk for the test
// with the test-only DISKWATCH_TEST_* variables (userspace/kernel/test_map_sizes.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support/scratch.h"
#include "support/soak.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kKiB = 1024;
constexpr long long kMiB = 1 << 20;

// Sets an environment variable for the children started while it lives.
struct ScopedEnv {
    std::string name;
    ScopedEnv(std::string key, const std::string &value) : name(std::move(key))
    {
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

std::vector<json> parse_lines(const std::string &out)
{
    std::vector<json> refreshes;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty())
            continue;
        INFO("top printed a line that is not JSON: " << line);
        REQUIRE_NOTHROW(refreshes.push_back(json::parse(line)));
    }
    return refreshes;
}

long long bytes_of_pid(const std::vector<json> &refreshes, int pid)
{
    long long total = 0;
    for (const auto &refresh : refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == pid)
                total += row.at("write_bytes").get<long long>();
    return total;
}

// A child that forks and exits at once, `count` times: lifecycle records only.
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

}  // namespace

TEST_CASE("a full writer map is counted in drops, counts stay exact or low (never high), and room comes back",
          "[security][faults][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    constexpr int kMapEntries = 64;
    constexpr int kWriters = 192;  // alive at the same time: three times what the map holds
    constexpr long long kChunk = 64 * kKiB;
    std::vector<WriterResult> writers(kWriters);
    WriterResult after;
    TopRun run;
    {
        ScopedEnv shrink("DISKWATCH_TEST_WRITERS_MAX", std::to_string(kMapEntries));
        run = run_top_while({"--by", "process"}, 6, 2, [&] {
            std::vector<ChildProcess> running;
            for (int i = 0; i < kWriters; ++i)
                running.push_back(ChildProcess::start({DW_TEST_WRITER, "--mode", "write", "--file",
                                                       disk.path() + "/w" + std::to_string(i), "--bytes",
                                                       std::to_string(kMiB), "--chunk", std::to_string(kChunk),
                                                       "--comm", "dw-mapfull", "--linger-ms", "2000"}));
            for (int i = 0; i < kWriters; ++i) {
                auto status = running[static_cast<size_t>(i)].wait(std::chrono::seconds(60));
                REQUIRE(status == 0);
                REQUIRE(std::sscanf(running[static_cast<size_t>(i)].out().c_str(), "pid %d wrote %lld",
                                    &writers[static_cast<size_t>(i)].pid,
                                    &writers[static_cast<size_t>(i)].written) == 2);
            }
            // Two refreshes see the exits and free their keys; then there is
            // room again and a new writer is counted exactly.
            std::this_thread::sleep_for(std::chrono::milliseconds(4500));
            after = run_writer({"--mode", "write", "--file", disk.path() + "/after", "--bytes",
                                std::to_string(3 * kMiB), "--comm", "dw-after"});
        });
    }
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() == 6);
    CHECK_THAT(run.stderr_text, Catch::Contains("DISKWATCH_TEST_WRITERS_MAX"));  // said plainly
    const auto drops = run.refreshes.back().at("drops").at("writers_map_full").get<long long>();
    CHECK(drops > 0);
    int exact = 0;
    long long missing = 0;
    for (const auto &writer : writers) {
        const long long counted = bytes_of_pid(run.refreshes, writer.pid);
        INFO("pid " << writer.pid << " wrote " << writer.written << ", counted " << counted);
        REQUIRE(writer.written == kMiB);
        CHECK(counted <= writer.written);   // a dropped write is missing, never invented
        CHECK(counted % kChunk == 0);       // whole writes only: no torn or mixed-up counters
        exact += counted == writer.written;
        missing += writer.written - counted;
    }
    CHECK(exact > 0);
    CHECK(missing > 0);
    // Every write that is missing was counted as a drop (drops also count
    // other processes of the machine, so they can only be more).
    CHECK(drops >= missing / kChunk);
    CHECK(bytes_of_pid(run.refreshes, after.pid) == after.written);
}

TEST_CASE("an overflowing lifecycle ring buffer is counted in drops and never corrupts byte counts",
          "[security][faults][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    std::vector<json> refreshes;
    std::vector<WriterResult> writers;
    std::string top_err;
    {
        // One page: about sixty lifecycle records.
        ScopedEnv shrink("DISKWATCH_TEST_EVENTS_BYTES", std::to_string(::sysconf(_SC_PAGESIZE)));
        auto top = ChildProcess::start({DW_BINARY, "top", "-b", "--json", "-n", "5", "-d", "2"});
        REQUIRE(top.wait_for_stderr("attached", std::chrono::seconds(30)));
        // The slowest reader there is: top is stopped while processes come
        // and go (the ChildProcess destructor resumes it whatever happens).
        top.signal(SIGSTOP);
        std::thread storm([] { fork_storm(1500); });
        for (int i = 0; i < 4; ++i)
            writers.push_back(run_writer({"--mode", "write", "--file", disk.path() + "/r" + std::to_string(i),
                                          "--bytes", std::to_string(4 * kMiB), "--comm", "dw-ringfull"}));
        storm.join();
        top.signal(SIGCONT);
        auto status = top.wait(std::chrono::seconds(60));
        top_err = top.err();
        INFO(top_err);
        REQUIRE(status == 0);
        refreshes = parse_lines(top.out());
    }
    INFO(top_err);
    REQUIRE(refreshes.size() == 5);
    CHECK(refreshes.back().at("drops").at("ringbuf_full").get<long long>() > 0);
    for (const auto &writer : writers) {
        INFO("pid " << writer.pid);
        CHECK(bytes_of_pid(refreshes, writer.pid) == writer.written);
    }
}

TEST_CASE("thousands of short-lived writers for a minute: exact totals, no lost records, bounded memory",
          "[soak][faults][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(512);
    constexpr auto kSoak = std::chrono::seconds(50);
    constexpr int kInFlight = 8;
    constexpr int kRate = 100;
    auto top = ChildProcess::start({DW_BINARY, "top", "-b", "--json", "-n", "60", "-d", "1"});
    REQUIRE(top.wait_for_stderr("attached", std::chrono::seconds(30)));

    // fork + write + exit, 8 at a time, paced to kRate a second: thousands
    // in all, a rate a busy host sees.
    long long rss_early = -1;
    const auto writers = run_short_lived_writers(disk.path() + "/soak", "dw-soak", kSoak, kRate, kInFlight,
                                                 [&](std::chrono::steady_clock::duration elapsed) {
                                                     if (rss_early < 0 && elapsed > std::chrono::seconds(10))
                                                         rss_early = vm_rss_kib(top.pid());
                                                 });
    const long long expected = writers.bytes_written;
    const long long rss_late = vm_rss_kib(top.pid());
    auto status = top.wait(std::chrono::seconds(60));
    INFO(top.err());
    REQUIRE(status == 0);
    const auto refreshes = parse_lines(top.out());
    REQUIRE(refreshes.size() == 60);

    INFO(writers.spawned << " writers, " << writers.failed << " failed; top RSS " << rss_early << " KiB after 10 s, "
                  << rss_late << " KiB at the end");
    CHECK(writers.spawned >= 2000);
    CHECK(writers.failed == 0);
    // Exact totals: only the soak's children write to this filesystem.
    long long rows_total = 0, mount_total = 0;
    std::set<std::string> names;
    for (const auto &refresh : refreshes) {
        for (const auto &row : refresh.at("rows"))
            if (row.at("mount") == disk.path()) {
                rows_total += row.at("write_bytes").get<long long>();
                names.insert(row.at("comm").get<std::string>());
            }
        for (const auto &mount : refresh.at("mounts"))
            if (mount.at("mount") == disk.path())
                mount_total += mount.at("write_bytes").get<long long>();
    }
    CHECK(rows_total == expected);
    CHECK(mount_total == expected);
    // No lifecycle record lost at this rate: every exit record arrived (it
    // carries the name the process had when it exited).
    CHECK(refreshes.back().at("drops").at("ringbuf_full") == 0);
    CHECK(refreshes.back().at("drops").at("writers_map_full") == 0);
    CHECK(names == std::set<std::string>{"dw-soak"});
    // Bounded memory: what top keeps about exited processes is pruned (at
    // most 8192 records of a few hundred bytes), so 16 MiB of growth is a
    // generous bound.
    REQUIRE(rss_early > 0);
    REQUIRE(rss_late > 0);
    CHECK(rss_late < rss_early + 16 * 1024);
    CHECK(rss_late < 128 * 1024);
}
