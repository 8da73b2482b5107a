// Issue #20, "Done when": an incident replayed on a loop-mounted disk, end to
// end. A logger ("suricata", in a cgroup of its own) fills a 64 MiB ext4,
// rotating its log once (app.log -> old.log); a shipper ("filebeat") holds
// old.log open, and the operator deletes it, so its space stays used; a
// database ("pg wal'$(x)": a name hostile to a shell) keeps failing to write
// its WAL once the disk is full; the agent is SIGKILLed and started again
// half-way. The flight recorder lives ON that disk (its space reserved, capped
// at 4 MiB). Then:
//  - `explain DISK --json` names each of them, correctly, and its text says so;
//  - the record holds both agents' starts and the writes seen by both;
//  - the recorder goes on recording while the disk is full;
//  - a record torn in the middle (the newest fine segment's last) is skipped
//    with a warning by explain and top --replay, which still answer;
//  - the store never takes more than its cap.
// Real BPF programs, real processes, real signals, a real full disk.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ecosystem/ecosystem_support.h"
#include "support/agent_run.h"
#include "support/scratch.h"
#include "support/spawn.h"

using namespace diskwatch::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr long long kKiB = 1 << 10;
constexpr long long kMiB = 1 << 20;
constexpr long long kRecorderCap = 4 * kMiB;

constexpr const char *kLoggerComm = "suricata";
constexpr const char *kShipperComm = "filebeat";
constexpr const char *kVictimComm = "pg wal'$(x)";  // valid, and hostile to a shell

// What the children tell the test, in memory they share with it.
struct Shared {
    std::atomic<long long> logger_written {0};  // bytes the kernel said it wrote
    std::atomic<long long> logger_nospace {0};
    std::atomic<int> rotated {0};               // app.log -> old.log done
    std::atomic<int> shipper_ready {0};         // old.log open and read
    std::atomic<long long> victim_written {0};
    std::atomic<long long> victim_nospace {0};
};

Shared *make_shared_block()
{
    void *memory = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(memory != MAP_FAILED);
    return new (memory) Shared();
}

struct SharedBlock {
    Shared *shared = make_shared_block();
    ~SharedBlock() { ::munmap(shared, sizeof(Shared)); }
};

// A forked child of this test, SIGKILLed and reaped however the test ends
// (and dead with it, should the test binary itself be killed).
class Forked {
public:
    explicit Forked(const std::function<void()> &body)
    {
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(1);
            body();
            ::_exit(0);
        }
    }
    ~Forked()
    {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    Forked(const Forked &) = delete;
    Forked &operator=(const Forked &) = delete;
    pid_t pid() const { return pid_; }
    bool alive() const { return ::waitpid(pid_, nullptr, WNOHANG) == 0; }

private:
    pid_t pid_ = -1;
};

void sleep_s(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

// Appends `buffer` to fd at `rate` bytes/s (a schedule, no catching up after a
// refusal) until `stop_at` bytes (0: for ever); a refusal for want of space is
// counted and retried 100 ms later, as a logger that keeps trying does.
void paced_appends(int fd, const std::vector<char> &buffer, double rate, long long stop_at,
                   std::atomic<long long> &written, std::atomic<long long> &nospace)
{
    auto next = std::chrono::steady_clock::now();
    long long mine = 0;
    while (stop_at == 0 || mine < stop_at) {
        const ssize_t n = ::write(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == ENOSPC || errno == EDQUOT)
                ++nospace;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            next = std::chrono::steady_clock::now();
            continue;
        }
        mine += n;
        written += n;
        next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(static_cast<double>(n) / rate));
        std::this_thread::sleep_until(next);
    }
}

// The logger: joins its cgroup, calls itself suricata, writes 6 MiB to
// app.log, rotates it (rename to old.log, a new app.log), then appends with
// two threads at 2 MiB/s each until the disk is full, and keeps trying.
void logger_main(const std::string &log_dir, const std::string &cgroup, Shared *shared)
{
    {
        const int procs = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (procs < 0 || ::write(procs, "0", 1) != 1)
            ::_exit(3);
        ::close(procs);
    }
    ::prctl(PR_SET_NAME, kLoggerComm);
    const std::string app = log_dir + "/app.log", old = log_dir + "/old.log";
    const std::vector<char> burst(64 * kKiB, 'L');
    int fd = ::open(app.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        ::_exit(4);
    paced_appends(fd, burst, 4.0 * kMiB, 6 * kMiB, shared->logger_written, shared->logger_nospace);
    ::close(fd);
    if (::rename(app.c_str(), old.c_str()) != 0)
        ::_exit(5);
    fd = ::open(app.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        ::_exit(6);
    shared->rotated = 1;
    std::thread second([&] {
        paced_appends(fd, burst, 2.0 * kMiB, 0, shared->logger_written, shared->logger_nospace);
    });
    paced_appends(fd, burst, 2.0 * kMiB, 0, shared->logger_written, shared->logger_nospace);
    second.join();
}

// The shipper: opens the rotated log, reads it through, and holds it open.
void shipper_main(const std::string &old_log, Shared *shared)
{
    ::prctl(PR_SET_NAME, kShipperComm);
    const int fd = ::open(old_log.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        ::_exit(4);
    std::vector<char> buffer(256 * kKiB);
    while (::read(fd, buffer.data(), buffer.size()) > 0) {
    }
    shared->shipper_ready = 1;
    for (;;)
        ::pause();
}

// The victim: a database appending 4 KiB to its WAL every 50 ms, which keeps
// failing once the disk is full.
void victim_main(const std::string &wal, Shared *shared)
{
    ::prctl(PR_SET_NAME, kVictimComm);
    const int fd = ::open(wal.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        ::_exit(4);
    const std::vector<char> page(4 * kKiB, 'W');
    for (;;) {
        const ssize_t n = ::write(fd, page.data(), page.size());
        if (n < 0 && (errno == ENOSPC || errno == EDQUOT))
            ++shared->victim_nospace;
        else if (n > 0)
            shared->victim_written += n;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

// The space the recorder's directory takes: every entry's allocated blocks,
// and the directory's own.
long long allocated_bytes(const std::string &dir)
{
    long long total = 0;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0)
        total += static_cast<long long>(st.st_blocks) * 512;
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator(dir, ec))
        if (::lstat(entry.path().c_str(), &st) == 0)
            total += static_cast<long long>(st.st_blocks) * 512;
    return total;
}

struct Ran {
    int status = -1;
    std::string out, err;
};

Ran run_cli(const std::vector<std::string> &argv, std::chrono::milliseconds timeout = std::chrono::seconds(30))
{
    auto child = ChildProcess::start(argv);
    Ran ran;
    ran.status = child.wait(timeout).value_or(-1);
    ran.out = child.out();
    ran.err = child.err();
    return ran;
}

json explain_json(const std::string &disk, const std::string &recorder)
{
    const Ran ran = run_cli({DW_BINARY, "explain", disk, "--recorder", recorder, "--since", "10m ago", "--json"});
    INFO("explain exit " << ran.status << "; stderr: " << ran.err);
    REQUIRE(ran.status == 0);
    auto answer = json::parse(ran.out, nullptr, false);
    REQUIRE_FALSE(answer.is_discarded());
    return answer;
}

// The recorded windows top --replay shows from 10 minutes ago (one
// document per line).
size_t replayed_windows(const std::string &recorder, std::string *stderr_text = nullptr)
{
    const Ran ran = run_cli({DW_BINARY, "top", "--replay", "10m ago", "--recorder", recorder, "--json"});
    if (stderr_text)
        *stderr_text = ran.err;
    INFO("top --replay exit " << ran.status << "; stderr: " << ran.err);
    REQUIRE(ran.status == 0);
    size_t lines = 0;
    std::istringstream in(ran.out);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) {
            REQUIRE_FALSE(json::parse(line, nullptr, false).is_discarded());
            ++lines;
        }
    return lines;
}

// "2026-12-05T21:43:09.123Z" -> unix seconds.
double unix_of(const json &rfc3339)
{
    REQUIRE(rfc3339.is_string());
    const std::string text = rfc3339.get<std::string>();
    struct tm when {};
    const char *rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &when);
    REQUIRE(rest != nullptr);
    double fraction = 0;
    if (*rest == '.')
        fraction = std::stod("0" + std::string(rest).substr(0, std::string(rest).find('Z')));
    return static_cast<double>(::timegm(&when)) + fraction;
}

double unix_now()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const json *find_pid(const json &list, pid_t pid)
{
    for (const auto &entry : list)
        if (entry.value("pid", 0) == pid)
            return &entry;
    return nullptr;
}

// The on-disk format of the store (recorder/record_store.cpp).
constexpr char kSegmentMagic[8] = {'D', 'W', 'S', 'E', 'G', 0, 0, 1};
constexpr uint32_t kRecordMagic = 0x31525744;

struct TornAt {
    std::string segment;
    uint64_t record_offset = 0;
};

// Flips bytes in the middle of the payload of the last record of the newest
// fine segment (the highest generation), as a crash mid-write would leave it.
std::optional<TornAt> tear_last_record(const std::string &recorder)
{
    std::string newest;
    uint64_t newest_generation = 0;
    for (int i = 0; i < 8; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "fine.%02d", i);
        const std::string path = recorder + "/" + name;
        std::ifstream in(path, std::ios::binary);
        char header[64] = {};
        if (!in.read(header, sizeof header) || std::memcmp(header, kSegmentMagic, 8) != 0)
            continue;
        uint32_t tier = 0;
        uint64_t generation = 0;
        std::memcpy(&tier, header + 12, 4);
        std::memcpy(&generation, header + 16, 8);
        if (tier == 0 && generation > newest_generation) {
            newest_generation = generation;
            newest = path;
        }
    }
    if (newest.empty())
        return std::nullopt;
    std::string data;
    {
        std::ifstream in(newest, std::ios::binary);
        std::stringstream buffer;
        buffer << in.rdbuf();
        data = buffer.str();
    }
    uint64_t offset = 64, last = 0;
    uint32_t last_stored = 0;
    while (offset + 40 <= data.size()) {
        uint32_t magic = 0, stored = 0;
        uint64_t generation = 0;
        std::memcpy(&magic, data.data() + offset, 4);
        std::memcpy(&stored, data.data() + offset + 4, 4);
        std::memcpy(&generation, data.data() + offset + 16, 8);
        if (magic != kRecordMagic || generation != newest_generation || offset + 40 + stored > data.size())
            break;
        last = offset;
        last_stored = stored;
        offset += (40 + uint64_t {stored} + 7) & ~uint64_t {7};
    }
    if (last == 0 || last_stored < 8)
        return std::nullopt;
    const int fd = ::open(newest.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    const uint64_t middle = last + 40 + last_stored / 2 - 4;
    char bytes[8];
    bool ok = ::pread(fd, bytes, sizeof bytes, static_cast<off_t>(middle)) == sizeof bytes;
    for (char &c : bytes)
        c = static_cast<char>(~c);
    ok = ok && ::pwrite(fd, bytes, sizeof bytes, static_cast<off_t>(middle)) == sizeof bytes;
    ::fsync(fd);
    ::close(fd);
    if (!ok)
        return std::nullopt;
    return TornAt {newest, last};
}

std::string joined(const json &strings)
{
    std::string out;
    for (const auto &s : strings)
        out += (s.is_string() ? s.get<std::string>() : s.dump()) + "\n";
    return out;
}

bool disk_full(const std::string &path)
{
    struct statvfs st {};
    // ext4 keeps a little back (s_resv_clusters) even from root: "full" is
    // nothing left available, root's reserve included or not.
    return ::statvfs(path.c_str(), &st) == 0 && st.f_bavail * st.f_frsize < 1 * kMiB;
}

}  // namespace

TEST_CASE("an incident on a loop-mounted disk: explain names the writer, the shipper holding a deleted log and the "
          "victim, across an agent SIGKILL, and the recorder on the full disk keeps recording, skips a "
          "torn tail, stays under its cap",
          "[explain][recorder][incident][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(64);
    const std::string log_dir = disk.path() + "/var/log/app";
    const std::string recorder = disk.path() + "/recorder";
    fs::create_directories(log_dir);
    fs::create_directories(disk.path() + "/db");
    Cgroup2Child logger_cgroup("dw-suricata");
    SharedBlock block;
    Shared *shared = block.shared;

    const std::string policy = "interval: 250ms\n"
                               "recorder:\n"
                               "  resolution: 1s\n"
                               "  coarse_resolution: 2s\n"
                               "  max_size: 4MiB\n";
    std::vector<std::pair<std::string, long long>> store_sizes;  // (when, allocated bytes)

    // ---- agent A, then the incident starts ----
    std::optional<AgentRun> first;
    first.emplace(policy, std::vector<std::string> {"--recorder", recorder});
    REQUIRE(first->started());
    const pid_t first_agent = first->pid();
    REQUIRE(wait_until([&] { return fs::exists(recorder + "/fine.07") && fs::exists(recorder + "/coarse.07"); },
                       std::chrono::seconds(10)));
    store_sizes.emplace_back("agent A started", allocated_bytes(recorder));

    Forked victim([&] { victim_main(disk.path() + "/db/wal", shared); });
    Forked logger([&] { logger_main(log_dir, logger_cgroup.path(), shared); });
    REQUIRE(wait_until([&] { return shared->rotated.load() == 1; }, std::chrono::seconds(10)));
    Forked shipper([&] { shipper_main(log_dir + "/old.log", shared); });
    REQUIRE(wait_until([&] { return shared->shipper_ready.load() == 1; }, std::chrono::seconds(10)));

    // ---- the agent is SIGKILLed mid-incident, and another one starts on the same record ----
    sleep_s(2.5);
    const long long written_before_kill = shared->logger_written.load();
    first->signal(SIGKILL);
    CHECK(first->stop() == 128 + SIGKILL);
    first.reset();
    store_sizes.emplace_back("agent A SIGKILLed", allocated_bytes(recorder));
    AgentRun second(policy, {"--recorder", recorder});
    REQUIRE(second.started());
    const double second_started = unix_now();
    const long long written_when_second_started = shared->logger_written.load();
    INFO("logger wrote " << written_before_kill / kMiB << " MiB before the kill, " << written_when_second_started / kMiB
                         << " MiB when agent B started");
    REQUIRE_FALSE(disk_full(disk.path()));  // else agent B sees nothing of the filling: the test proves less

    // The operator deletes the rotated log; the shipper still holds it.
    REQUIRE(::unlink((log_dir + "/old.log").c_str()) == 0);

    // ---- until the disk is full, and both the logger and the victim are refused ----
    REQUIRE(wait_until([&] { return shared->logger_nospace.load() > 0 && shared->victim_nospace.load() > 0; },
                       std::chrono::seconds(40)));
    const long long written_total_when_full = shared->logger_written.load();
    INFO("the disk filled: the logger wrote " << written_total_when_full / kMiB << " MiB");
    CHECK(disk_full(disk.path()));
    store_sizes.emplace_back("the disk filled", allocated_bytes(recorder));

    // ---- the recorder records on the full disk (its space is reserved) ----
    sleep_s(1.5);  // the window in which the disk filled is written
    const size_t windows_when_full = replayed_windows(recorder);
    sleep_s(3.5);
    const size_t windows_later = replayed_windows(recorder);
    CHECK(disk_full(disk.path()));
    INFO("replayed windows: " << windows_when_full << " when full, " << windows_later << " 3.5 s later");
    CHECK(windows_later >= windows_when_full + 2);
    store_sizes.emplace_back("3.5 s on the full disk", allocated_bytes(recorder));

    // ---- explain, while it all still runs ----
    const json answer = explain_json(disk.path(), recorder);
    INFO("explain: " << answer.dump(2));
    const long long logger_written_at_explain = shared->logger_written.load();

    // The mount: this disk, full.
    CHECK(answer["mount"].value("mount", "") == disk.path());
    CHECK(answer["mount"].value("fstype", "") == "ext4");
    CHECK((answer["mount"].value("used_pct", 0.0) >= 99.0 || answer["mount"].value("available_bytes", kMiB) < kMiB));

    // The record: both agents' starts, A's before B's.
    const json &record = answer["record"];
    REQUIRE(record["agent_starts"].size() == 2);
    CHECK(record["agent_starts"][0].value("pid", 0) == first_agent);
    CHECK(record["agent_starts"][1].value("pid", 0) == second.pid());
    CHECK(unix_of(record["agent_starts"][0]["ts"]) < unix_of(record["agent_starts"][1]["ts"]));
    // explain reads the coarse tier (2 s windows here) where it was written,
    // fine windows elsewhere: ~15 s of writes are 5 windows or more.
    CHECK(record.value("windows_on_mount", 0) >= 5);
    CHECK(record["warnings"].empty());
    CHECK(record.value("bytes_on_disk", 0LL) <= kRecorderCap);

    // Who filled it: the logger first, by pid and name, counted by both agents and not twice.
    const json &by_growth = answer["writers"]["by_growth"];
    REQUIRE_FALSE(by_growth.empty());
    CHECK(by_growth[0].value("pid", 0) == logger.pid());
    CHECK(by_growth[0].value("comm", "") == kLoggerComm);
    CHECK(by_growth[0].value("cgroup", "") == logger_cgroup.relative_path());
    CHECK(by_growth[0].value("growth_bytes", 0LL) >= 20 * kMiB);
    const json *logger_row = find_pid(answer["writers"]["by_bytes"], logger.pid());
    REQUIRE(logger_row != nullptr);
    const long long logger_counted = logger_row->value("write_bytes", 0LL);
    INFO("explain counted " << logger_counted << " bytes of the logger; it wrote " << logger_written_at_explain
                            << ", " << written_when_second_started << " when agent B started");
    // Agent B alone saw less than what both saw: A's windows count (less the
    // one it was writing when killed); nothing is counted twice.
    CHECK(logger_counted >= (written_total_when_full - written_when_second_started) + 2 * kMiB);
    CHECK(logger_counted <= logger_written_at_explain);
    CHECK(unix_of(by_growth[0]["first_seen"]) < second_started - 1);
    CHECK(unix_of(by_growth[0]["last_seen"]) > second_started);
    // The victim wrote little and grew little: not the cause.
    if (const json *victim_row = find_pid(by_growth, victim.pid()))
        CHECK(victim_row->value("growth_bytes", 0LL) < 2 * kMiB);

    // The workload: the logger's cgroup.
    REQUIRE_FALSE(answer["writers"]["workloads_by_growth"].empty());
    CHECK(answer["writers"]["workloads_by_growth"][0].value("cgroup", "") == logger_cgroup.relative_path());

    // Where the bytes are: app.log grew, by many MiB, named by the record, written by the logger.
    // (The logger's first app.log, rotated to old.log, is another inode.)
    struct stat app_stat {};
    REQUIRE(::stat((log_dir + "/app.log").c_str(), &app_stat) == 0);
    const json &growing = answer["files"]["growing"];
    const json *app_log = nullptr;
    for (const auto &file : growing)
        if (file.value("ino", uint64_t {0}) == app_stat.st_ino)
            app_log = &file;
    REQUIRE(app_log != nullptr);
    CHECK(app_log->value("path", "") == log_dir + "/app.log");
    CHECK(app_log->value("exists", false));
    CHECK(app_log->value("growth_bytes", 0LL) >= 16 * kMiB);
    CHECK(app_log->value("named_by", "") == "record");
    CHECK(app_log->dump().find(kLoggerComm) != std::string::npos);

    // Deleted but open: old.log, held by the shipper, not by the logger that wrote it.
    const json &deleted = answer["deleted_open"];
    const json *old_log = nullptr;
    for (const auto &file : deleted)
        if (file.value("path", "").find("old.log") != std::string::npos)
            old_log = &file;
    REQUIRE(old_log != nullptr);
    CHECK(old_log->value("path", "").rfind(log_dir + "/old.log", 0) == 0);
    CHECK(old_log->value("allocated_bytes", 0LL) >= 6 * kMiB);
    REQUIRE((*old_log)["holders"].size() == 1);
    CHECK((*old_log)["holders"][0].value("pid", 0) == shipper.pid());
    CHECK((*old_log)["holders"][0].value("comm", "") == kShipperComm);
    CHECK((*old_log)["holders"][0].value("writable", true) == false);
    CHECK(find_pid((*old_log)["holders"], logger.pid()) == nullptr);
    CHECK(answer.value("deleted_open_bytes", 0LL) >= 6 * kMiB);
    // The rotated inode is in files.growing too, under the name it was
    // recorded with (app.log): not gone, but deleted and held by the shipper,
    // the same inode as deleted_open's entry.
    for (const auto &file : growing)
        if (file.value("ino", uint64_t {0}) == old_log->value("ino", uint64_t {1})) {
            INFO("the rotated, deleted, still open log in files.growing: " << file.dump());
            CHECK(file.value("deleted", false));
            REQUIRE(file["held_open_by"].size() == 1);
            CHECK(file["held_open_by"][0] == shipper.pid());
        }

    // Failing for want of space: the victim (kernel counter, branch enospc), with its hostile name intact.
    const json *victim_failing = find_pid(answer["failing_writers"], victim.pid());
    REQUIRE(victim_failing != nullptr);
    CHECK(victim_failing->value("comm", "") == kVictimComm);
    CHECK(victim_failing->value("nospace_failures", 0LL) > 0);
    CHECK(victim_failing->value("nospace_failures", 0LL) <= shared->victim_nospace.load());
    CHECK(victim_failing->contains("first_failure"));
    CHECK(victim_failing->contains("last_failure"));

    // What to do: the shipper by name and pid, the logger's cgroup and its file, the victim as a victim.
    const std::string advice = joined(answer["advice"]);
    CHECK(advice.find(std::string(kShipperComm) + " (pid " + std::to_string(shipper.pid()) + ")") != std::string::npos);
    CHECK(advice.find(logger_cgroup.relative_path()) != std::string::npos);
    CHECK(advice.find(log_dir + "/app.log") != std::string::npos);
    CHECK(advice.find(std::string(kVictimComm) + " (pid " + std::to_string(victim.pid()) + ")") != std::string::npos);
    // The logger is refused too once the disk is full: it is named as the
    // cause (first by growth), never "a victim, not the cause".
    bool logger_named_as_cause = false, logger_called_a_victim = false;
    for (const auto &line : answer["advice"]) {
        const std::string text = line.get<std::string>();
        if (text.find(std::string(kLoggerComm) + " (pid " + std::to_string(logger.pid()) + ")") == std::string::npos)
            continue;
        (text.find("victim") != std::string::npos ? logger_called_a_victim : logger_named_as_cause) = true;
    }
    CHECK(!logger_called_a_victim);
    CHECK(logger_named_as_cause);

    // The same answer for a person.
    {
        const Ran text = run_cli({DW_BINARY, "explain", disk.path(), "--recorder", recorder, "--since", "10m ago"});
        INFO("explain (text), exit " << text.status << ":\n" << text.out << text.err);
        CHECK(text.status == 0);
        CHECK(text.out.find(std::string(kLoggerComm) + " (pid " + std::to_string(logger.pid()) + ")") != std::string::npos);
        CHECK(text.out.find(std::string(kShipperComm) + " (pid " + std::to_string(shipper.pid()) + ")") != std::string::npos);
        CHECK(text.out.find(std::string(kVictimComm) + " (pid " + std::to_string(victim.pid()) + ")") != std::string::npos);
        CHECK(text.out.find(log_dir + "/app.log") != std::string::npos);
        CHECK(text.out.find("old.log") != std::string::npos);
        CHECK(text.out.find("(pid " + std::to_string(first_agent) + ") started recording") != std::string::npos);
        CHECK(text.out.find("(pid " + std::to_string(second.pid()) + ") started recording") != std::string::npos);
    }

    // ---- agent B stops; nothing it wrote on the full disk failed ----
    CHECK(second.stop() == 0);
    {
        const std::string agent_log = second.stderr_text();
        INFO("agent B's log:\n" << agent_log);
        CHECK(agent_log.find("recorder: cannot") == std::string::npos);
        CHECK(agent_log.find("not recording") == std::string::npos);
    }
    store_sizes.emplace_back("agent B stopped", allocated_bytes(recorder));
    const size_t windows_whole = replayed_windows(recorder);

    // ---- a torn tail: skipped with a warning, the rest still read ----
    const auto torn = tear_last_record(recorder);
    REQUIRE(torn.has_value());
    INFO("tore the record at offset " << torn->record_offset << " of " << torn->segment);
    const json after = explain_json(disk.path(), recorder);  // exit 0 (REQUIREd inside)
    const std::string warnings = joined(after["record"]["warnings"]);
    CHECK(warnings.find("torn record at offset " + std::to_string(torn->record_offset)) != std::string::npos);
    CHECK(warnings.find(torn->segment) != std::string::npos);
    CHECK(after["record"]["agent_starts"].size() == 2);
    REQUIRE_FALSE(after["writers"]["by_growth"].empty());
    CHECK(after["writers"]["by_growth"][0].value("pid", 0) == logger.pid());
    std::string replay_stderr;
    const size_t windows_torn = replayed_windows(recorder, &replay_stderr);
    INFO("top --replay stderr: " << replay_stderr);
    CHECK(replay_stderr.find("torn record") != std::string::npos);
    CHECK(windows_torn + 1 == windows_whole);
    {
        const Ran text = run_cli({DW_BINARY, "explain", disk.path(), "--recorder", recorder, "--since", "10m ago"});
        CHECK(text.status == 0);
        CHECK(text.out.find("warning: " + torn->segment + ": a torn record") != std::string::npos);
    }
    store_sizes.emplace_back("after the torn tail", allocated_bytes(recorder));

    // ---- the store never exceeded its cap ----
    for (const auto &[when, bytes] : store_sizes) {
        INFO(when << ": the recorder's directory takes " << bytes << " bytes");
        CHECK(bytes <= kRecorderCap + 4096);
        CHECK(bytes >= kRecorderCap);  // reserved in full
    }
    CHECK(logger.alive());
    CHECK(victim.alive());
    CHECK(shipper.alive());
}
