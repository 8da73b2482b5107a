// The accuracy suite of docs/attribution.md: every write path, a writer of
// known size, on a loop-mounted ext4, on xfs and on tmpfs, read back through
// `top -b --json` after the writer has exited. Bytes and growth within 1%, on
// the writer's own pid and the mount the bytes land on, and no path counted
// twice (a double count shows up as 200%).
//
// One `top` run per filesystem watches every path's writer in turn, so the
// whole suite costs a few refreshes, not one per path.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <thread>

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

struct Counted {
    long long write_bytes = 0;
    long long growth_bytes = 0;
    int rows = 0;
    bool exited = true;
};

Counted counted_for(const TopRun &run, int pid, const std::string &mount)
{
    Counted counted;
    for (const auto &refresh : run.refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == pid && row.at("mount") == mount) {
                counted.write_bytes += row.at("write_bytes").get<long long>();
                counted.growth_bytes += row.at("growth_bytes").get<long long>();
                counted.exited = row.at("exited").get<bool>();  // as of the last refresh
                ++counted.rows;
            }
    return counted;
}

// `top -b --json -d 1` for as long as the workload takes (a busy CI machine
// can make it slow), plus two refreshes after the last writer has exited,
// then stopped: every refresh it printed is a whole line.
TopRun run_top_through(const std::vector<std::string> &extra_arguments, const std::function<void()> &workload)
{
    std::vector<std::string> argv = {DW_BINARY, "top", "-b", "--json", "-n", "100000", "-d", "1"};
    argv.insert(argv.end(), extra_arguments.begin(), extra_arguments.end());
    auto top = ChildProcess::start(argv);
    const bool attached = top.wait_for_stderr("attached", std::chrono::seconds(30));
    INFO("top stderr: " << top.err());
    REQUIRE(attached);
    workload();
    // Two more refreshes after the last writer exited, however long a busy
    // machine takes to print them: the second covers the first's tail.
    top.wait_for_more_stdout_lines(2, std::chrono::seconds(30));
    top.signal(SIGKILL);
    top.wait(std::chrono::seconds(10));
    TopRun run;
    run.stderr_text = top.err();
    run.exit_status = 0;
    std::istringstream lines(top.out());
    std::string line;
    while (std::getline(lines, line))
        if (!line.empty() && line.back() == '}')
            run.refreshes.push_back(json::parse(line));
    return run;
}

void check_within_one_percent(const std::string &what, long long measured, long long expected)
{
    INFO(what << ": measured " << measured << ", expected " << expected);
    CHECK(std::llabs(measured - expected) <= std::max(expected / 100, 0LL));
}

// One path: how to run its writer, and what it must count.
struct WritePath {
    std::string name;
    std::vector<std::string> arguments;  // dw-test-writer arguments besides --file and --bytes
    long long bytes;
    bool counts_bytes = true;   // false: fallocate/ftruncate grow the file without data
    bool grows = true;          // the file grows by every byte (a new file)
};

std::vector<WritePath> paths_for(const std::string &fstype)
{
    const long long n = 8 * kMiB;
    std::vector<WritePath> paths = {
        {"write", {"--mode", "write", "--chunk", "65536"}, n + 12345},
        {"pwrite64", {"--mode", "pwrite64", "--chunk", "65536"}, n + 12345},
        {"writev", {"--mode", "writev", "--chunk", "65536"}, n + 12345},
        {"pwritev", {"--mode", "pwritev", "--chunk", "65536"}, n},
        {"pwritev2", {"--mode", "pwritev2", "--chunk", "65536"}, n},
        {"sendfile", {"--mode", "sendfile", "--chunk", "65536"}, n},
        {"splice", {"--mode", "splice", "--chunk", "65536"}, n},
        {"copy_file_range", {"--mode", "copy_file_range", "--chunk", "65536"}, n},
        {"io_uring", {"--mode", "io_uring", "--chunk", "65536"}, n + 4096},
        {"aio", {"--mode", "aio", "--chunk", "65536"}, n},
        {"threads", {"--mode", "pwrite64", "--threads", "4", "--chunk", "65536"}, 4 * n},
        {"fallocate", {"--mode", "fallocate"}, n, false},
        {"ftruncate", {"--mode", "ftruncate"}, n, false},
    };
    if (fstype != "tmpfs") {
        // tmpfs has no dirty-page accounting (shmem pages never pass through
        // writeback): stores through its mappings are a known gap.
        paths.push_back({"mmap", {"--mode", "mmap", "--chunk", "65536"}, n});
        paths.push_back({"direct-write", {"--mode", "pwrite64", "--direct", "1", "--chunk", "65536"}, n});
        paths.push_back({"direct-io_uring", {"--mode", "io_uring", "--direct", "1", "--chunk", "65536"}, n});
        paths.push_back({"direct-aio", {"--mode", "aio", "--direct", "1", "--chunk", "65536"}, n});
    }
    return paths;
}

// Runs every path's writer (each exits before the refresh) under one `top`,
// then checks each one's row.
void check_every_path(const std::string &mount_path, const std::string &fstype,
                      const std::vector<std::string> &top_arguments)
{
    const auto paths = paths_for(fstype);
    std::map<std::string, WriterResult> writers;
    WriterResult rewriter, seed;
    const long long rewrite_file = 4 * kMiB, rewrite_bytes = 32 * kMiB;
    // Every refresh, summed: on a busy machine the writers may take several
    // intervals; a writer's row in the last refresh it appears in says it
    // has exited.
    auto run = run_top_through(top_arguments, [&] {
        for (const auto &path : paths) {
            std::vector<std::string> arguments = path.arguments;
            arguments.insert(arguments.end(), {"--file", mount_path + "/" + path.name, "--bytes",
                                               std::to_string(path.bytes)});
            writers[path.name] = run_writer(arguments);
        }
        // Rewrite in place: a file made by another process, then written
        // over and over by this one: high write_bytes, no growth.
        seed = run_writer({"--mode", "write", "--file", mount_path + "/database", "--bytes",
                           std::to_string(rewrite_file)});
        rewriter = run_writer({"--mode", "rewrite", "--file", mount_path + "/database", "--file-size",
                               std::to_string(rewrite_file), "--bytes", std::to_string(rewrite_bytes), "--chunk",
                               "65536"});
        // Writeback of this filesystem now, by kernel threads: never counted as writers.
        const int dir = ::open(mount_path.c_str(), O_RDONLY | O_DIRECTORY);
        if (dir >= 0) {
            ::syncfs(dir);
            ::close(dir);
        }
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    REQUIRE(run.refreshes.size() >= 2);

    for (const auto &path : paths) {
        const WriterResult &writer = writers.at(path.name);
        const Counted counted = counted_for(run, writer.pid, mount_path);
        INFO(fstype << " path " << path.name << " pid " << writer.pid);
        REQUIRE(writer.written == path.bytes);
        CHECK(counted.rows >= 1);
        CHECK(counted.exited);
        check_within_one_percent(path.name + " write_bytes", counted.write_bytes, path.counts_bytes ? path.bytes : 0);
        check_within_one_percent(path.name + " growth_bytes", counted.growth_bytes, path.bytes);
    }
    {
        INFO(fstype << " rewrite in place");
        const Counted counted = counted_for(run, rewriter.pid, mount_path);
        check_within_one_percent("rewrite write_bytes", counted.write_bytes, rewrite_bytes);
        CHECK(counted.growth_bytes <= rewrite_bytes / 100);
        const Counted seeded = counted_for(run, seed.pid, mount_path);
        check_within_one_percent("seed growth_bytes", seeded.growth_bytes, rewrite_file);
    }
    // Kernel threads (writeback, the flusher, jbd2, xfs workers) never show
    // up as the writer of user data.
    for (const auto &refresh : run.refreshes)
    for (const auto &row : refresh.at("rows")) {
        if (row.at("mount") != mount_path)
            continue;
        const std::string comm = row.at("comm").get<std::string>();
        INFO("row comm " << comm << " pid " << row.at("pid"));
        CHECK(comm.rfind("kworker", 0) == std::string::npos);
        CHECK(comm.rfind("jbd2", 0) == std::string::npos);
        CHECK(comm.rfind("xfs", 0) == std::string::npos);
        CHECK(comm.rfind("flush", 0) == std::string::npos);
    }
    // The mount's growth is the sum of its rows' growth.
    long long mount_growth = 0, rows_growth = 0;
    for (const auto &refresh : run.refreshes) {
        for (const auto &mount : refresh.at("mounts"))
            if (mount.at("mount") == mount_path)
                mount_growth += mount.at("growth_bytes").get<long long>();
        for (const auto &row : refresh.at("rows"))
            if (row.at("mount") == mount_path)
                rows_growth += row.at("growth_bytes").get<long long>();
    }
    CHECK(mount_growth == rows_growth);
    CHECK(mount_growth >= rewrite_file);
}

}  // namespace

TEST_CASE("every write path on ext4 counts its bytes and growth once, exactly", "[write_paths][ext4][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(400);
    check_every_path(disk.path(), "ext4", {"--by", "process"});
}

TEST_CASE("every write path on xfs counts its bytes and growth once, exactly", "[write_paths][xfs][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(400, "xfs");
    check_every_path(disk.path(), "xfs", {"--by", "process"});
}

TEST_CASE("every write path on tmpfs counts its bytes and growth once, exactly", "[write_paths][tmpfs][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    TmpfsMount memory(256 * 1024);
    check_every_path(memory.path(), "tmpfs", {"--by", "process"});
}

TEST_CASE("the fallback families count io_uring, AIO, mmap stores and growth too", "[write_paths][hooks][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    TracefsRestore tracefs;  // the tracepoint family may mount it
    const auto family = GENERATE(as<std::string>{}, "raw_tp", "tracepoint");
    DYNAMIC_SECTION("hooks " << family)
    {
        std::map<std::string, WriterResult> writers;
        auto run = run_top_through({"--by", "process", "--hooks", family}, [&] {
            for (const char *mode : {"io_uring", "aio", "mmap", "writev", "fallocate", "ftruncate"})
                writers[mode] = run_writer({"--mode", mode, "--file", disk.path() + "/" + family + "-" + mode,
                                            "--bytes", std::to_string(8 * kMiB), "--chunk", "65536"});
        });
        INFO(run.stderr_text);
        REQUIRE(run.exit_status == 0);
        CHECK_THAT(run.stderr_text, Catch::Contains("attached " + family + " hooks"));
        CHECK_THAT(run.stderr_text, !Catch::Contains("not counted"));
        for (const auto &[mode, writer] : writers) {
            INFO(family << " mode " << mode);
            const Counted counted = counted_for(run, writer.pid, disk.path());
            const bool data = mode != "fallocate" && mode != "ftruncate";
            check_within_one_percent("write_bytes", counted.write_bytes, data ? writer.written : 0);
            check_within_one_percent("growth_bytes", counted.growth_bytes, writer.written);
        }
    }
}

TEST_CASE("appenders sharing a log, then a positioned writer after them, count the log's growth once",
          "[write_paths][growth][bpf]")
{
    // The logger's path counts an O_APPEND write's growth without the
    // known-size map (bpf/file_growth.bpf.h, growth_of_append): what it
    // leaves behind must still let every other writer of the file count
    // exactly. Line-sized appends, so that most never touch the map.
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    const std::string log = disk.path() + "/eve.json";
    // The lone appender ends ~60 KB past a 64 KiB boundary: the most the known
    // size can lag behind it.
    const long long shared = 4 * kMiB + 4321, alone = kMiB + 51358, extension = 2 * kMiB;
    std::vector<WriterResult> appenders;
    WriterResult last_appender, positioned;
    auto run = run_top_through({"--by", "process"}, [&] {
        // Two appenders at once (two open files: each append keeps the
        // known size up to date), one alone (the map every 64 KiB).
        std::vector<std::thread> threads;
        appenders.resize(2);
        for (int i = 0; i < 2; ++i)
            threads.emplace_back([&, i] {
                appenders[i] = run_writer({"--mode", "write", "--file", log, "--bytes", std::to_string(shared),
                                           "--chunk", std::to_string(300 + 40 * i)});
            });
        for (auto &thread : threads)
            thread.join();
        last_appender = run_writer({"--mode", "write", "--file", log, "--bytes", std::to_string(alone),
                                    "--chunk", "333"});
        // Then a positioned writer: over the whole log, and 2 MiB past its end.
        positioned = run_writer({"--mode", "pwrite64", "--file", log, "--bytes",
                                 std::to_string(2 * shared + alone + extension), "--chunk", "65536"});
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    for (const auto &appender : appenders) {
        INFO("appender pid " << appender.pid);
        check_within_one_percent("appender growth_bytes", counted_for(run, appender.pid, disk.path()).growth_bytes,
                                 shared);
    }
    check_within_one_percent("lone appender growth_bytes",
                             counted_for(run, last_appender.pid, disk.path()).growth_bytes, alone);
    // Within 1% of 2 MiB: a known size left 64 KiB behind would be 3% over.
    check_within_one_percent("positioned growth_bytes", counted_for(run, positioned.pid, disk.path()).growth_bytes,
                             extension);
    struct stat st {};
    REQUIRE(::stat(log.c_str(), &st) == 0);
    CHECK(st.st_size == 2 * shared + alone + extension);
}

TEST_CASE("a deleted file still open and growing is named, and marked deleted", "[write_paths][files][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    const std::string path = disk.path() + "/eve.json";
    std::optional<ChildProcess> writer;
    auto run = run_top_while({"--by", "process"}, 1, 3, [&] {
        // Opens, unlinks (a log rotated away under a writer that never
        // reopens), keeps writing, and holds the file open past the refresh.
        writer.emplace(ChildProcess::start({DW_TEST_WRITER, "--mode", "write", "--file", path, "--bytes",
                                            std::to_string(4 * kMiB), "--chunk", "65536", "--rate", "4000000",
                                            "--unlink-after-open", "1", "--linger-ms", "6000"}));
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    auto rows = rows_where(run.refreshes[0], "pid", writer->pid());
    REQUIRE(rows.size() == 1);
    const json &row = rows[0];
    INFO(row.dump());
    CHECK(row.at("growth_bytes").get<long long>() > 0);
    REQUIRE(row.at("files").size() >= 1);
    CHECK(row.at("files").at(0).at("path") == path);
    CHECK(row.at("files").at(0).at("deleted") == true);
    struct stat st {};
    CHECK(::stat(path.c_str(), &st) != 0);  // du cannot see it
}

TEST_CASE("a live writer's row names the file it writes", "[write_paths][files][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    const std::string path = disk.path() + "/app.log";
    std::optional<ChildProcess> writer;
    auto run = run_top_while({"--by", "process"}, 2, 2, [&] {
        writer.emplace(ChildProcess::start({DW_TEST_WRITER, "--mode", "write", "--file", path, "--bytes",
                                            std::to_string(8 * kMiB), "--chunk", "65536", "--rate", "2000000",
                                            "--linger-ms", "6000"}));
    });
    INFO(run.stderr_text);
    REQUIRE(run.exit_status == 0);
    // The first refresh in which it wrote (it writes for about 4 s).
    std::vector<json> rows;
    for (const auto &refresh : run.refreshes)
        if (rows.empty())
            rows = rows_where(refresh, "pid", writer->pid());
    INFO((rows.empty() ? std::string("no row") : rows[0].dump()));
    REQUIRE(rows.size() == 1);
    REQUIRE(rows[0].at("files").size() >= 1);
    CHECK(rows[0].at("files").at(0).at("path") == path);
    CHECK(rows[0].at("files").at(0).at("deleted") == false);
}

TEST_CASE("the systemd unit and the container are named from the writer's cgroup", "[write_paths][cgroup][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(128);
    Cgroup2Child parent("dw-test-units");
    const std::string id(64, 'c');
    struct Child {
        std::string path;
        explicit Child(std::string p) : path(std::move(p)) { REQUIRE(::mkdir(path.c_str(), 0755) == 0); }
        ~Child() { ::rmdir(path.c_str()); }
    };
    Child service(parent.path() + "/suricata-test.service");
    Child container(parent.path() + "/docker-" + id + ".scope");
    WriterResult in_service, in_container;
    auto run = run_top_while({"--by", "process"}, 1, 2, [&] {
        in_service = run_writer({"--mode", "write", "--file", disk.path() + "/service", "--bytes",
                                 std::to_string(2 * kMiB), "--cgroup", service.path});
        in_container = run_writer({"--mode", "write", "--file", disk.path() + "/container", "--bytes",
                                   std::to_string(2 * kMiB), "--cgroup", container.path});
    });
    REQUIRE(run.exit_status == 0);
    auto service_rows = rows_where(run.refreshes[0], "pid", in_service.pid);
    REQUIRE(service_rows.size() == 1);
    CHECK(service_rows[0].at("unit") == "suricata-test.service");
    CHECK(service_rows[0].at("container").is_null());
    auto container_rows = rows_where(run.refreshes[0], "pid", in_container.pid);
    REQUIRE(container_rows.size() == 1);
    CHECK(container_rows[0].at("unit") == "docker-" + id + ".scope");
    CHECK(container_rows[0].at("container").at("id") == id);
    CHECK(container_rows[0].at("container").at("runtime") == "docker");
}

namespace {

// A writer's ENOSPC/EDQUOT failures as top counted them on `mount`: the
// interval counts summed over every refresh, and the since-start count of the
// last refresh that showed it.
struct Refused {
    long long interval_sum = 0;
    long long last_total = 0;
    long long write_bytes = 0;
    int rows = 0;
};

Refused refused_for(const TopRun &run, int pid, const std::string &mount)
{
    Refused refused;
    for (const auto &refresh : run.refreshes)
        for (const auto &row : refresh.at("rows"))
            if (row.at("pid") == pid && row.at("mount") == mount) {
                refused.interval_sum += row.at("nospace_failures").get<long long>();
                refused.last_total = row.at("total_nospace_failures").get<long long>();
                refused.write_bytes += row.at("write_bytes").get<long long>();
                ++refused.rows;
            }
    return refused;
}

}  // namespace

// Issue #20: who keeps failing to write because the disk is full. An 8 MiB
// ext4 is filled by writers that keep going after ENOSPC (dw-test-writer
// --keep-going-when-full counts every refusal itself); each hook family must
// count exactly those refusals, on the writer's pid and the full mount, and
// none for a writer whose writes all landed.
TEST_CASE("writers refused with ENOSPC on a full disk are counted per writer, exactly",
          "[write_paths][nospace][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    TracefsRestore tracefs;  // the tracepoint family may mount it
    const auto family = GENERATE(as<std::string>{}, "tp_btf", "raw_tp", "tracepoint");
    DYNAMIC_SECTION("hooks " << family)
    {
        LoopMount disk(8);
        const std::string dir = disk.path() + "/";
        const std::string chunk = "65536", over_full = std::to_string(16 * kMiB);
        WriterResult fine;
        std::map<std::string, WriterResult> refused;
        auto run = run_top_through({"--by", "process", "--hooks", family}, [&] {
            // Before the disk is full: every byte lands.
            fine = run_writer({"--mode", "write", "--file", dir + "fine", "--bytes", std::to_string(kMiB), "--chunk",
                               chunk, "--keep-going-when-full", "1"});
            // Four threads of positioned writes fill the disk, then keep trying.
            refused["pwrite64 threads"] =
                run_writer({"--mode", "pwrite64", "--threads", "4", "--file", dir + "threads", "--bytes", over_full,
                            "--chunk", chunk, "--keep-going-when-full", "1"});
            // The disk is full now: these land (almost) nothing.
            for (const char *mode : {"write", "writev", "io_uring", "aio", "fallocate"})
                refused[mode] = run_writer({"--mode", mode, "--file", dir + mode, "--bytes", std::to_string(4 * kMiB),
                                            "--chunk", chunk, "--keep-going-when-full", "1"});
        });
        INFO(run.stderr_text);
        REQUIRE(run.exit_status == 0);
        REQUIRE_THAT(run.stderr_text, Catch::Contains("attached " + family + " hooks"));

        CHECK(fine.nospace_failures == 0);
        const Refused fine_counted = refused_for(run, fine.pid, disk.path());
        CHECK(fine_counted.rows > 0);
        CHECK(fine_counted.write_bytes == fine.written);
        CHECK(fine_counted.interval_sum == 0);
        CHECK(fine_counted.last_total == 0);

        long long rows_sum = 0;
        for (const auto &[mode, writer] : refused) {
            INFO(family << " mode " << mode << ": the writer saw " << writer.nospace_failures << " refusals");
            REQUIRE(writer.nospace_failures > 0);  // else the disk was not full: the test proves nothing
            const Refused counted = refused_for(run, writer.pid, disk.path());
            // A writer that only ever failed still has a row.
            CHECK(counted.rows > 0);
            CHECK(counted.interval_sum == writer.nospace_failures);
            CHECK(counted.last_total == writer.nospace_failures);
            rows_sum += counted.interval_sum;
        }

        // The mount row sums its writers' refusals.
        long long mount_sum = 0;
        for (const auto &refresh : run.refreshes)
            for (const auto &mount : refresh.at("mounts"))
                if (mount.at("mount") == disk.path())
                    mount_sum += mount.at("nospace_failures").get<long long>();
        CHECK(mount_sum == rows_sum);
    }
}
