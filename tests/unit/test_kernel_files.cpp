// Faults in the kernel's pseudo-files (resolve/kernel_files.h): each resolver
// runs on a fixture /proc root where a file vanishes between open and read,
// a read fails (ESRCH, EIO), a file is a directory (EISDIR), is cut short or
// holds garbage. Each answers "unknown" (nullopt, 0, empty) and nothing
// throws: a process reaped while the agent reads it must never end the agent
// (issue #13; docs/security.md). ESRCH and EIO come through the reader's test
// seam (resolve/kernel_files_fault.h), the rest are real files.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "actions/pidfd.h"
#include "actions/protection.h"
#include "metrics/agent_metrics.h"
#include "resolve/cgroups.h"
#include "resolve/kernel_files.h"
#include "resolve/kernel_files_fault.h"
#include "resolve/mountinfo.h"
#include "resolve/numbers.h"
#include "resolve/open_files.h"
#include "resolve/processes.h"
#include "resolve/workloads.h"

using namespace diskwatch;
namespace fs = std::filesystem;

namespace {

constexpr int kPid = 4242;
const std::string kContainer = "4f6a2b1c9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718";

// Fields 3 to 52 of a stat line: state R, flags (9) 4194560, utime (14) 100,
// stime (15) 50, starttime (22) 12345, rss (24) 256.
std::string stat_after_comm(const std::string &start_time = "12345")
{
    std::string fields = "R";
    for (int n = 4; n <= 52; ++n) {
        std::string value = "0";
        if (n == 9)
            value = "4194560";
        else if (n == 14)
            value = "100";
        else if (n == 15)
            value = "50";
        else if (n == 22)
            value = start_time;
        else if (n == 24)
            value = "256";
        fields += " " + value;
    }
    return fields + "\n";
}

void write_file(const std::string &path, const std::string &text)
{
    std::ofstream(path, std::ios::binary) << text;
}

// A /proc root with one process, kPid, whole and well formed, a cgroup2
// mount with its cgroup, a mountinfo and a Docker root; removed on exit.
struct FixtureProc {
    std::string root;
    std::string pid_dir;
    std::string cgroup_dir;
    std::string written;
    FixtureProc()
    {
        char pattern[] = "/tmp/dw-kernel-files-XXXXXX";
        root = ::mkdtemp(pattern);
        pid_dir = root + "/" + std::to_string(kPid);
        fs::create_directories(pid_dir + "/fd");
        fs::create_directories(pid_dir + "/fdinfo");
        write_file(pid_dir + "/comm", "dw (fix)\nture\n");
        write_file(pid_dir + "/stat", std::to_string(kPid) + " (dw (fix)\nture) " + stat_after_comm());
        write_file(pid_dir + "/status", "Name:\tdw\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 \nCapEff:\t00000000a80425fb\n");
        write_file(pid_dir + "/cgroup", "0::/dw.slice/fixture.service\n");
        written = root + "/written.log";
        write_file(written, "abc");
        fs::create_symlink(written, pid_dir + "/fd/3");
        write_file(pid_dir + "/fdinfo/3", "pos:\t3\nflags:\t0100001\nmnt_id:\t29\n");
        cgroup_dir = root + "/cgroup2/dw.slice/fixture.service";
        fs::create_directories(cgroup_dir);
        write_file(cgroup_dir + "/cgroup.procs", std::to_string(kPid) + "\n4243\n");
        write_file(root + "/mountinfo", "29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
        fs::create_directories(root + "/docker/containers/" + kContainer);
        write_file(root + "/docker/containers/" + kContainer + "/config.v2.json", R"({"Name":"/web"})");
        write_file(root + "/bpf_stats_enabled", "1\n");
    }
    ~FixtureProc()
    {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    FixtureProc(const FixtureProc &) = delete;
    FixtureProc &operator=(const FixtureProc &) = delete;

    std::string file(const std::string &name) const { return pid_dir + "/" + name; }
    // Replaces a file of the process with a directory of that name (read(2): EISDIR).
    void make_directory(const std::string &path) const
    {
        fs::remove(path);
        fs::create_directory(path);
    }
    uint32_t dev() const
    {
        struct stat st {};
        REQUIRE(::stat(written.c_str(), &st) == 0);
        return (::major(st.st_dev) << 20) | ::minor(st.st_dev);
    }
};

// What the fault function does to a read of a path that ends with `suffix`
// ("" for every path): remove `vanish` first (the process is reaped between
// open and read), then fail with `error`.
struct Fault {
    std::string suffix;
    int error = 0;
    std::string vanish;
    int injected = 0;
};
Fault current_fault;

int inject(const char *path)
{
    const std::string_view name = path;
    if (name.size() < current_fault.suffix.size() ||
        name.substr(name.size() - current_fault.suffix.size()) != current_fault.suffix)
        return 0;
    if (!current_fault.vanish.empty()) {
        std::error_code ec;
        fs::remove_all(current_fault.vanish, ec);
    }
    ++current_fault.injected;
    return current_fault.error;
}

// Installs the fault for one scope; nothing is injected once it ends.
struct InjectedFault {
    InjectedFault(std::string suffix, int error, std::string vanish = {})
    {
        current_fault = Fault {std::move(suffix), error, std::move(vanish), 0};
        set_kernel_file_fault(inject);
    }
    ~InjectedFault() { set_kernel_file_fault(nullptr); }
    InjectedFault(const InjectedFault &) = delete;
    InjectedFault &operator=(const InjectedFault &) = delete;
    int injected() const { return current_fault.injected; }
};

// Every resolver of the process's files, each answering "unknown".
void check_process_unknown(const FixtureProc &proc)
{
    CHECK_FALSE(read_process_identity(kPid, proc.root));
    CHECK_FALSE(read_process_start_boot_s(kPid, proc.root));
    CHECK_FALSE(read_process_stat(proc.pid_dir));
    CHECK(process_state(kPid, proc.root) == 0);
    CHECK_FALSE(is_kernel_thread(kPid, proc.root));
    CHECK_FALSE(metrics::read_process_usage(proc.pid_dir));
}

}  // namespace

TEST_CASE("the fixture process resolves whole when no fault is injected", "[kernel_files]")
{
    FixtureProc proc;
    const auto identity = read_process_identity(kPid, proc.root);
    REQUIRE(identity);
    CHECK(identity->comm == "dw (fix)\nture");
    CHECK(identity->uid == 1000);
    CHECK(identity->start_boot_s == Approx(12345.0 / static_cast<double>(::sysconf(_SC_CLK_TCK))));
    CHECK(process_state(kPid, proc.root) == 'R');
    CHECK_FALSE(is_kernel_thread(kPid, proc.root));
    const auto usage = metrics::read_process_usage(proc.pid_dir);
    REQUIRE(usage);
    CHECK(usage->resident_bytes == 256 * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
    CHECK(cgroup2_path_of_process(kPid, proc.root) == "/dw.slice/fixture.service");
    CHECK(cgroup_processes(proc.cgroup_dir) == std::vector<int> {kPid, 4243});
    const auto files = files_written_by(kPid, proc.dev(), {}, 8, proc.root);
    REQUIRE(files.size() == 1);
    CHECK(files[0].path == proc.written);
    CHECK(MountTable::load(proc.root + "/mountinfo").entries().size() == 1);
    CHECK(ContainerNames(proc.root + "/docker").name_of(kContainer) == "web");
    CHECK(read_integer_file(proc.root + "/bpf_stats_enabled") == 1);
    CHECK(status_value(read_kernel_file(proc.file("status")).text, "CapEff") == "00000000a80425fb");
}

TEST_CASE("a process that vanishes between open and read of its /proc files is unknown", "[kernel_files]")
{
    for (const char *name : {"/comm", "/stat", "/status"}) {
        FixtureProc proc;
        InjectedFault fault(name, ESRCH, proc.pid_dir);
        CAPTURE(name);
        REQUIRE_NOTHROW(check_process_unknown(proc));
        CHECK_FALSE(read_process_identity(kPid, proc.root));
    }
    FixtureProc proc;
    {
        InjectedFault fault("/cgroup", ESRCH, proc.pid_dir);
        CHECK_FALSE(cgroup2_path_of_process(kPid, proc.root));
        CHECK(fault.injected() == 1);
    }
    FixtureProc gone_with_fd;
    {
        // Its fd is listed, then the process goes before fdinfo is read: the
        // file is not known to be written.
        InjectedFault fault("/fdinfo/3", ESRCH, gone_with_fd.pid_dir);
        CHECK(files_written_by(kPid, gone_with_fd.dev(), {}, 8, gone_with_fd.root).empty());
        CHECK(fault.injected() == 1);
    }
    FixtureProc cgroup_gone;
    {
        InjectedFault fault("/cgroup.procs", ENODEV, cgroup_gone.cgroup_dir);
        CHECK(cgroup_processes(cgroup_gone.cgroup_dir).empty());
    }
    FixtureProc container_gone;
    {
        InjectedFault fault("/config.v2.json", ENOENT, container_gone.root + "/docker/containers/" + kContainer);
        CHECK_FALSE(ContainerNames(container_gone.root + "/docker").name_of(kContainer));
    }
}

TEST_CASE("a read of a /proc file that fails with ESRCH makes the process unknown", "[kernel_files]")
{
    FixtureProc proc;
    {
        InjectedFault fault("/stat", ESRCH);
        REQUIRE_NOTHROW(check_process_unknown(proc));
        CHECK(fault.injected() > 0);
    }
    for (const char *name : {"/comm", "/status"}) {  // without its owner: uid 0 would say root
        InjectedFault fault(name, ESRCH);
        CAPTURE(name);
        REQUIRE_NOTHROW(read_process_identity(kPid, proc.root));
        CHECK_FALSE(read_process_identity(kPid, proc.root));
        CHECK(fault.injected() > 0);
    }
    {
        InjectedFault fault("", ESRCH);
        CHECK_FALSE(cgroup2_path_of_process(kPid, proc.root));
        CHECK(cgroup_processes(proc.cgroup_dir).empty());
        CHECK(files_written_by(kPid, proc.dev(), {}, 8, proc.root).empty());
        CHECK(read_kernel_file(proc.file("comm")).error == ESRCH);
    }
    CHECK(read_process_identity(kPid, proc.root));  // the seam is off again
}

TEST_CASE("a read of a pseudo-file that fails with EIO is unknown", "[kernel_files]")
{
    FixtureProc proc;
    InjectedFault fault("", EIO);
    REQUIRE_NOTHROW(check_process_unknown(proc));
    CHECK_FALSE(cgroup2_path_of_process(kPid, proc.root));
    CHECK(cgroup_processes(proc.cgroup_dir).empty());
    CHECK(files_written_by(kPid, proc.dev(), {}, 8, proc.root).empty());
    CHECK(MountTable::load(proc.root + "/mountinfo").entries().empty());
    CHECK_FALSE(ContainerNames(proc.root + "/docker").name_of(kContainer));
    CHECK_FALSE(read_integer_file(proc.root + "/bpf_stats_enabled"));
    const auto read = read_kernel_file(proc.file("comm"));
    CHECK(read.error == EIO);
    CHECK(read.text.empty());
}

TEST_CASE("a pseudo-file that is a directory (read fails with EISDIR) is unknown", "[kernel_files]")
{
    for (const char *name : {"comm", "stat", "status"}) {
        FixtureProc proc;
        proc.make_directory(proc.file(name));
        CAPTURE(name);
        CHECK(read_kernel_file(proc.file(name)).error == EISDIR);
        REQUIRE_NOTHROW(read_process_identity(kPid, proc.root));
        CHECK_FALSE(read_process_identity(kPid, proc.root));
    }
    FixtureProc proc;
    proc.make_directory(proc.file("stat"));
    check_process_unknown(proc);
    proc.make_directory(proc.file("cgroup"));
    CHECK_FALSE(cgroup2_path_of_process(kPid, proc.root));
    proc.make_directory(proc.file("fdinfo/3"));
    CHECK(files_written_by(kPid, proc.dev(), {}, 8, proc.root).empty());
    proc.make_directory(proc.cgroup_dir + "/cgroup.procs");
    CHECK(cgroup_processes(proc.cgroup_dir).empty());
    proc.make_directory(proc.root + "/mountinfo");
    CHECK(MountTable::load(proc.root + "/mountinfo").entries().empty());
    proc.make_directory(proc.root + "/docker/containers/" + kContainer + "/config.v2.json");
    CHECK_FALSE(ContainerNames(proc.root + "/docker").name_of(kContainer));
}

TEST_CASE("a missing pseudo-file is unknown", "[kernel_files]")
{
    FixtureProc proc;
    CHECK(read_kernel_file(proc.file("nothing")).error == ENOENT);
    CHECK_FALSE(read_process_identity(kPid + 1, proc.root));
    CHECK(process_state(kPid + 1, proc.root) == 0);
    CHECK_FALSE(cgroup2_path_of_process(kPid + 1, proc.root));
    CHECK(cgroup_processes(proc.root + "/no-such-cgroup").empty());
    CHECK(MountTable::load(proc.root + "/no-mountinfo").entries().empty());
    CHECK_FALSE(read_integer_file(proc.root + "/no-sysctl"));
}

TEST_CASE("truncated /proc files are unknown, never a wrong number", "[kernel_files]")
{
    FixtureProc proc;
    const std::string whole = std::to_string(kPid) + " (dw (fix)\nture) " + stat_after_comm();
    // Cut anywhere before starttime (field 22): no start time, no usage.
    for (size_t cut : {size_t {0}, size_t {3}, size_t {10}, whole.find(") ") + 1, whole.find(") ") + 2,
                       whole.find(" 12345") + 3}) {
        write_file(proc.file("stat"), whole.substr(0, cut));
        CAPTURE(cut);
        REQUIRE_NOTHROW(read_process_identity(kPid, proc.root));
        CHECK_FALSE(read_process_identity(kPid, proc.root));
        CHECK_FALSE(read_process_start_boot_s(kPid, proc.root));
        CHECK_FALSE(metrics::read_process_usage(proc.pid_dir));
    }
    write_file(proc.file("stat"), whole);
    write_file(proc.file("comm"), "dw (fi");  // no '\n': cut short
    CHECK_FALSE(read_process_identity(kPid, proc.root));
    write_file(proc.file("comm"), "");
    CHECK_FALSE(read_process_identity(kPid, proc.root));
    write_file(proc.file("comm"), "dw\n");
    write_file(proc.file("status"), "Name:\tdw\nUi");
    CHECK_FALSE(read_process_identity(kPid, proc.root));
    write_file(proc.file("cgroup"), "0::/dw.sli");  // the line may not be whole
    CHECK_FALSE(cgroup2_path_of_process(kPid, proc.root));
    write_file(proc.file("fdinfo/3"), "pos:\t3\nfla");
    CHECK(files_written_by(kPid, proc.dev(), {}, 8, proc.root).empty());
    write_file(proc.root + "/bpf_stats_enabled", "");
    CHECK_FALSE(read_integer_file(proc.root + "/bpf_stats_enabled"));
}

TEST_CASE("garbage in /proc and cgroup files is unknown, never a wrong number", "[kernel_files]")
{
    FixtureProc proc;
    const std::string head = std::to_string(kPid) + " (dw) ";
    const std::vector<std::string> stats {head + "R x y z\n",
                                          "no parenthesis at all\n",
                                          head,
                                          head + stat_after_comm("99999999999999999999999"),
                                          head + stat_after_comm("-12345"),
                                          head + stat_after_comm("12e3"),
                                          std::string("\0\0\0\xff) \n", 7)};
    for (const auto &stat : stats) {
        write_file(proc.file("stat"), stat);
        CAPTURE(stat);
        REQUIRE_NOTHROW(read_process_identity(kPid, proc.root));
        CHECK_FALSE(read_process_start_boot_s(kPid, proc.root));
        CHECK_FALSE(read_process_identity(kPid, proc.root));
    }
    write_file(proc.file("stat"), head + "RR 1 2 3 4 5 6 notflags\n");
    CHECK(process_state(kPid, proc.root) == 0);
    CHECK_FALSE(is_kernel_thread(kPid, proc.root));
    write_file(proc.file("stat"), head + stat_after_comm());
    for (const char *status : {"Uid:\tnobody\t0\n", "Uid:\t99999999999\t0\n", "Uid:\t-1\t0\n", "Uid:\n"}) {
        write_file(proc.file("status"), status);
        CAPTURE(status);
        CHECK_FALSE(read_process_identity(kPid, proc.root));
    }
    write_file(proc.file("fdinfo/3"), "pos:\t3\nflags:\t0100009\n");  // 9 is no octal digit
    CHECK(files_written_by(kPid, proc.dev(), {}, 8, proc.root).empty());
    write_file(proc.cgroup_dir + "/cgroup.procs", "12 x\nabc\n-4\n99999999999\n43\n");
    CHECK(cgroup_processes(proc.cgroup_dir) == std::vector<int> {43});
    write_file(proc.root + "/mountinfo", "\xff\xfe garbage\n29 1 8:x / / rw - ext4 /dev/sda1 rw\n");
    CHECK(MountTable::load(proc.root + "/mountinfo").entries().empty());
    write_file(proc.root + "/docker/containers/" + kContainer + "/config.v2.json", "{\"Name\":");
    CHECK_FALSE(ContainerNames(proc.root + "/docker").name_of(kContainer));
    for (const char *sysctl : {"one\n", "1 2\n", "99999999999999999999\n"}) {
        write_file(proc.root + "/bpf_stats_enabled", sysctl);
        CHECK_FALSE(read_integer_file(proc.root + "/bpf_stats_enabled"));
    }
}

TEST_CASE("a pseudo-file larger than the cap fails with EFBIG", "[kernel_files]")
{
    FixtureProc proc;
    write_file(proc.file("comm"), std::string(10000, 'x'));
    const auto read = read_kernel_file(proc.file("comm"), 4096);
    CHECK(read.error == EFBIG);
    CHECK(read.text.empty());
    CHECK(read_kernel_file(proc.file("comm"), 10000).text.size() == 10000);
}

TEST_CASE("a read interrupted by a signal (EINTR) is retried", "[kernel_files]")
{
    FixtureProc proc;
    static int interruptions = 0;
    interruptions = 0;
    set_kernel_file_fault([](const char *) { return interruptions++ < 2 ? EINTR : 0; });
    const auto read = read_kernel_file(proc.file("comm"));
    set_kernel_file_fault(nullptr);
    CHECK(read.ok());
    CHECK(read.text == "dw (fix)\nture\n");
    CHECK(interruptions > 2);
}

TEST_CASE("numbers from kernel and user text are whole, in range, or nullopt", "[kernel_files]")
{
    CHECK(parse_integer<uint32_t>("1000") == 1000u);
    CHECK_FALSE(parse_integer<uint32_t>(""));
    CHECK_FALSE(parse_integer<uint32_t>("10x"));
    CHECK_FALSE(parse_integer<uint32_t>(" 10"));
    CHECK_FALSE(parse_integer<uint32_t>("-1"));
    CHECK_FALSE(parse_integer<uint32_t>("4294967296"));
    CHECK(parse_integer<uint32_t>("4294967295") == 4294967295u);
    CHECK(parse_integer<uint64_t>("a80425fb", 16) == 0xa80425fbu);
    CHECK(parse_integer<int>("-4") == -4);
    CHECK(parse_double("91.5") == 91.5);
    CHECK_FALSE(parse_double("91.5%"));
    CHECK_FALSE(parse_double(""));
    CHECK_FALSE(parse_double("1e999"));
}

TEST_CASE("a runtime's state file is read only when it is a regular file: a FIFO, a symlink or a device in its "
          "place is refused at once, never waited on",
          "[kernel_files][security]")
{
    char dir_template[] = "/tmp/dw-state-file-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const std::string dir = dir_template;
    {
        std::ofstream(dir + "/config.v2.json") << "{\"Name\":\"/web\"}";
    }
    CHECK(read_state_file(dir + "/config.v2.json", 4096).text == "{\"Name\":\"/web\"}");
    CHECK(read_state_file(dir + "/config.v2.json", 8).error == EFBIG);
    REQUIRE(::mkfifo((dir + "/fifo").c_str(), 0600) == 0);
    const auto fifo = read_state_file(dir + "/fifo", 4096);  // no writer: would block forever if opened blocking
    CHECK_FALSE(fifo.ok());
    REQUIRE(::symlink("/dev/zero", (dir + "/link").c_str()) == 0);
    CHECK(read_state_file(dir + "/link", 4096).error == ELOOP);
    CHECK_FALSE(read_state_file("/dev/zero", 4096).ok());
    std::filesystem::remove_all(dir);
}
