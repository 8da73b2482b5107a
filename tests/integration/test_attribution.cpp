// Attribution end to end: real BPF programs, real writers of known size on a
// loop-mounted ext4 made by the test, read back through `top -b --json`
// (the contract in docs/top-json.md).
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "resolve/mountinfo.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;

// Sum of write_bytes over every refresh for rows matching pid and mount.
long long bytes_for(const TopRun &run, int pid, const std::string &mount)
{
    long long total = 0;
    for (const auto &refresh : run.refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == pid && row.at("mount") == mount)
                total += row.at("write_bytes").get<long long>();
    return total;
}

void require_within_one_percent(long long measured, long long expected)
{
    INFO("measured " << measured << " bytes, expected " << expected);
    REQUIRE(expected > 0);
    CHECK(std::llabs(measured - expected) <= expected / 100);
}

}  // namespace

TEST_CASE("a 64 MiB writer that exits before the refresh keeps its row, pid, comm and mount",
          "[attribution][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    WriterResult writer;
    auto run = run_top_while({"--by", "process"}, 1, 5, [&] {
        writer = run_writer({"--mode", "write", "--file", disk.path() + "/log", "--bytes", std::to_string(64 * kMiB),
                             "--comm", "runaway-logger"});
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() == 1);
    const json &refresh = run.refreshes[0];
    CHECK(refresh.at("by") == "process");
    CHECK(refresh.at("interval_s").get<double>() > 4.0);
    REQUIRE(writer.written == 64 * kMiB);
    auto rows = rows_where(refresh, "pid", writer.pid);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].at("comm") == "runaway-logger");
    CHECK(rows[0].at("mount") == disk.path());
    CHECK(rows[0].at("dev") == disk.dev_string());
    CHECK(rows[0].at("fstype") == "ext4");
    CHECK(rows[0].at("exited") == true);
    require_within_one_percent(rows[0].at("write_bytes").get<long long>(), writer.written);
    CHECK(rows[0].at("write_bps").get<double>() > 0);
}

TEST_CASE("each write syscall counts the bytes it wrote, on the mount they land on", "[attribution][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    const auto mode = GENERATE(as<std::string>{}, "write", "pwrite64", "writev", "pwritev", "pwritev2", "sendfile",
                               "splice", "copy_file_range");
    DYNAMIC_SECTION("mode " << mode)
    {
        WriterResult writer;
        auto run = run_top_while({"--by", "process"}, 1, 2, [&] {
            writer = run_writer({"--mode", mode, "--file", disk.path() + "/data-" + mode, "--bytes",
                                 std::to_string(8 * kMiB + 12345), "--chunk", "65536"});
        });
        REQUIRE(run.exit_status == 0);
        require_within_one_percent(bytes_for(run, writer.pid, disk.path()), writer.written);
    }
}

TEST_CASE("bytes are the return value: a short write on a full filesystem counts what landed", "[attribution][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    TmpfsMount small(2048);  // 2 MiB
    WriterResult writer;
    auto run = run_top_while({"--by", "process"}, 1, 2, [&] {
        // Asks for 8 MiB; the kernel writes what fits, then ENOSPC ends it.
        auto child = ChildProcess::start({DW_TEST_WRITER, "--mode", "write", "--file", small.path() + "/fill",
                                          "--bytes", std::to_string(8 * kMiB), "--chunk", std::to_string(3 * kMiB)});
        child.wait(std::chrono::seconds(30));
        writer.pid = child.pid();
    });
    REQUIRE(run.exit_status == 0);
    struct stat st {};
    REQUIRE(::stat((small.path() + "/fill").c_str(), &st) == 0);
    const long long landed = bytes_for(run, writer.pid, small.path());
    CHECK(landed == st.st_size);
    CHECK(landed < 8 * kMiB);
}

TEST_CASE("pipes, sockets and character devices are never counted", "[attribution][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    WriterResult to_null, to_pipe;
    auto run = run_top_while({"--by", "process", "-a"}, 1, 2, [&] {
        to_null = run_writer({"--mode", "devnull", "--bytes", std::to_string(16 * kMiB)});
        to_pipe = run_writer({"--mode", "pipe", "--bytes", std::to_string(16 * kMiB)});
    });
    REQUIRE(run.exit_status == 0);
    REQUIRE(to_null.written == 16 * kMiB);
    REQUIRE(to_pipe.written == 16 * kMiB);
    CHECK(rows_where(run.refreshes[0], "pid", to_null.pid).empty());
    CHECK(rows_where(run.refreshes[0], "pid", to_pipe.pid).empty());
}

// A refresh that finds the kernel's counters unchanged since the previous one
// skips the map read (WriteMonitor::refresh, dw_counters_moved): the writer's
// pauses here make such refreshes, and nothing may be lost or counted twice
// across them.
TEST_CASE("a writer that pauses between bursts is counted exactly across the refreshes that saw no write",
          "[attribution][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(64);
    WriterResult writer;
    // 4 bursts of 1 MiB, 1 s apart; refreshes every 0.25 s.
    auto run = run_top_while({"--by", "process", "-a", "--local"}, 24, 0.25, [&] {
        writer = run_writer({"--mode", "write", "--file", disk.path() + "/bursts", "--bytes", std::to_string(4 * kMiB),
                             "--chunk", std::to_string(kMiB), "--pace", std::to_string(kMiB), "--linger-ms", "1000"});
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(writer.written == 4 * kMiB);
    long long counted = 0;
    int idle_refreshes = 0;
    for (const auto &refresh : run.refreshes) {
        auto rows = rows_where(refresh, "pid", writer.pid);
        if (rows.empty())
            continue;
        REQUIRE(rows.size() == 1);
        const long long interval = rows[0].at("write_bytes").get<long long>();
        counted += interval;
        // The accumulated total is what the intervals so far add up to,
        // whether or not the kernel was read at this refresh.
        CHECK(rows[0].at("total_bytes").get<long long>() == counted);
        if (interval == 0) {
            ++idle_refreshes;
            CHECK(rows[0].at("write_bps").get<double>() == 0);
        }
    }
    CHECK(counted == writer.written);
    // Pauses of 1 s at 0.25 s refreshes: the row stays (accumulated) with nothing new.
    CHECK(idle_refreshes >= 4);
}

TEST_CASE("threads of one process roll up to its pid", "[attribution][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    WriterResult writer;
    auto run = run_top_while({"--by", "process"}, 1, 2, [&] {
        writer = run_writer({"--mode", "pwrite64", "--file", disk.path() + "/mt", "--bytes", std::to_string(32 * kMiB),
                             "--threads", "4", "--chunk", "65536"});
    });
    REQUIRE(run.exit_status == 0);
    auto rows = rows_where(run.refreshes[0], "pid", writer.pid);
    REQUIRE(rows.size() == 1);
    require_within_one_percent(rows[0].at("write_bytes").get<long long>(), writer.written);
}

TEST_CASE("grouping by cgroup attributes a writer in a cgroup v2 child to that cgroup", "[attribution][cgroup][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    Cgroup2Child cgroup("dw-test");
    WriterResult writer;
    auto run = run_top_while({"--by", "cgroup"}, 1, 5, [&] {
        writer = run_writer({"--mode", "write", "--file", disk.path() + "/in-cgroup", "--bytes",
                             std::to_string(64 * kMiB), "--cgroup", cgroup.path()});
    });
    REQUIRE(run.exit_status == 0);
    auto rows = rows_where(run.refreshes[0], "cgroup_id", cgroup.id());
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].at("cgroup") == cgroup.relative_path());
    CHECK(rows[0].at("mount") == disk.path());
    CHECK(rows[0].at("pid") == writer.pid);
    CHECK(rows[0].at("processes") == 1);
    require_within_one_percent(rows[0].at("write_bytes").get<long long>(), writer.written);
}

TEST_CASE("grouping by mount shows the loop mount with the fill level df shows", "[attribution][mount][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    WriterResult writer;
    auto run = run_top_while({"--by", "mount"}, 1, 3, [&] {
        writer = run_writer({"--mode", "write", "--file", disk.path() + "/fill", "--bytes", std::to_string(96 * kMiB)});
        ::sync();
    });
    REQUIRE(run.exit_status == 0);
    const json &refresh = run.refreshes[0];
    auto rows = rows_where(refresh, "mount", disk.path());
    REQUIRE(rows.size() == 1);
    require_within_one_percent(rows[0].at("write_bytes").get<long long>(), writer.written);

    // df: Use% = used / (used + avail), from the same statvfs numbers.
    struct statvfs st {};
    REQUIRE(::statvfs(disk.path().c_str(), &st) == 0);
    const double used = static_cast<double>(st.f_blocks - st.f_bfree) * st.f_frsize;
    const double avail = static_cast<double>(st.f_bavail) * st.f_frsize;
    const double df_pct = 100.0 * used / (used + avail);
    json mount;
    for (const auto &m : refresh.at("mounts"))
        if (m.at("mount") == disk.path())
            mount = m;
    REQUIRE(mount.is_object());
    CHECK(mount.at("dev") == disk.dev_string());
    CHECK(mount.at("fstype") == "ext4");
    CHECK(mount.at("size_bytes").get<double>() == Approx(static_cast<double>(st.f_blocks) * st.f_frsize));
    CHECK(mount.at("used_pct").get<double>() == Approx(df_pct).margin(1.0));
    CHECK(mount.at("used_pct").get<double>() > 30.0);  // 96 MiB of 256 MiB landed
    require_within_one_percent(mount.at("write_bytes").get<long long>(), writer.written);
}

TEST_CASE("every hook family this kernel attaches attributes a known write exactly", "[attribution][hooks][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    TracefsRestore tracefs;  // the tracepoint family may mount it
    const auto family = GENERATE(as<std::string>{}, "tp_btf", "raw_tp", "tracepoint");
    DYNAMIC_SECTION("hooks " << family)
    {
        WriterResult writer;
        auto run = run_top_while({"--by", "process", "--hooks", family}, 1, 2, [&] {
            writer = run_writer({"--mode", "writev", "--file", disk.path() + "/" + family, "--bytes",
                                 std::to_string(16 * kMiB)});
        });
        INFO(run.stderr_text);
        REQUIRE(run.exit_status == 0);
        CHECK_THAT(run.stderr_text, Catch::Contains("attached " + family + " hooks"));
        require_within_one_percent(bytes_for(run, writer.pid, disk.path()), writer.written);
    }
}
