// Found by the hostile review of issue 14 (rates over a window, the throttle
// held in the kernel: bpf/throttle.bpf.h, actions/enforcer.cpp). Each failed
// on the code reviewed (main 733cc9c). Real agent, real writers, real
// signals; every process a test starts is killed, continued and reaped
// however the test ends.
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "actions/pidfd.h"
#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr long long kMiB = 1 << 20;

bool stopped(pid_t pid)
{
    const char state = diskwatch::process_state(pid);
    return state == 'T' || state == 't';
}

long long file_size(const std::string &path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

// Processes the test forked itself: SIGKILL, SIGCONT and reaped however the
// test ends.
class Forked {
public:
    ~Forked()
    {
        for (pid_t pid : pids_) {
            ::kill(pid, SIGKILL);
            ::kill(pid, SIGCONT);
            ::waitpid(pid, nullptr, 0);
        }
    }
    void add(pid_t pid) { pids_.push_back(pid); }
    void forget(pid_t pid) { std::erase(pids_, pid); }

private:
    std::vector<pid_t> pids_;
};

// The body of a forked writer: async-signal-safe calls only (the test
// process has threads). Never returns.
[[noreturn]] void writer_body(const char *comm, const char *path, size_t chunk, useconds_t pause_us,
                              long long wrap_bytes, std::atomic<long> *writes)
{
    ::prctl(PR_SET_NAME, comm);
    static char buffer[1 << 20];
    std::memset(buffer, 'h', sizeof(buffer));
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        ::_exit(1);
    long long offset = 0;
    for (;;) {
        if (::pwrite(fd, buffer, chunk, offset) > 0 && writes)
            writes->fetch_add(1);
        offset += static_cast<long long>(chunk);
        if (offset >= wrap_bytes)
            offset = 0;
        if (pause_us)
            ::usleep(pause_us);
    }
}

bool is_action(const json &e, const std::string &rule)
{
    return e.value("event", "") == "action" && e.value("rule", "") == rule && e.value("action", "") == "throttle";
}

}  // namespace

// Finding (worst outcome: stopped forever). A process-scope throttle is keyed
// in the kernel by the pid alone (dw_throttles {scope, tgid}). The throttled
// writer exits; until the agent's next tick removes the throttle, a new,
// unrelated process that takes the same pid and writes is charged to the dead
// writer's allowance (already in debt) and stopped. The continuer then
// continues "the throttle's own process" through the dead writer's pidfd
// (continue_stopped_locked: throttle->pidfd->pid() == stop.pid), which fails
// with ESRCH unchecked, after forgetting the stop record: nothing ever
// continues the newcomer. Measured: stopped for 600 s and counting.
TEST_CASE("hostile review 14: a process that takes the pid of a throttled writer that exited is never left stopped",
          "[hostile-review][throttle]")
{
    LoopMount disk {256};
    const std::string rule = "hr14-reuse";
    AgentRun agent(PolicyYaml()
                       .rule(rule)
                       .match("comm", {"dw-hr14-*"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "1MiB/s")
                       .set("throttle_for", "60s"));
    REQUIRE(agent.started());
    Forked forked;
    const std::string first_path = disk.path() + "/first.log";
    const std::string second_path = disk.path() + "/second.log";
    const pid_t first = ::fork();
    REQUIRE(first >= 0);
    if (first == 0)
        writer_body("dw-hr14-old", first_path.c_str(), 64 * 1024, 0, 64 * kMiB, nullptr);
    forked.add(first);
    REQUIRE(agent.wait_for([&](const json &e) { return is_action(e, rule) && e["process"]["pid"] == first; }, std::chrono::seconds(15)));
    std::this_thread::sleep_for(std::chrono::seconds(1));  // held: stopped and continued by the kernel's allowance

    // The writer dies (SIGKILL, as an OOM kill would) and a new process gets its pid
    // at once (clone3 set_tid: deterministic here; pid wrap-around on a busy host).
    ::kill(first, SIGKILL);
    ::waitpid(first, nullptr, 0);
    forked.forget(first);
    pid_t tid = first;
    clone_args args {};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uint64_t>(&tid);
    args.set_tid_size = 1;
    const pid_t second = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof(args)));
    REQUIRE(second >= 0);
    if (second == 0)  // a quiet process: 64 KiB every 200 ms, far below the rule
        writer_body("dw-hr14-new", second_path.c_str(), 64 * 1024, 200000, 64 * kMiB, nullptr);
    forked.add(second);
    REQUIRE(second == first);

    // A stop of the newcomer may happen (the old throttle is still in the map for
    // a tick); being left stopped may not: sample for 6 s, the longest stop counts.
    std::chrono::milliseconds longest(0);
    std::chrono::milliseconds current(0);
    for (int i = 0; i < 120; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        current = stopped(second) ? current + std::chrono::milliseconds(50) : std::chrono::milliseconds(0);
        longest = std::max(longest, current);
    }
    INFO("longest stop of the newcomer on the reused pid: " << longest.count() << " ms");
    CHECK(longest < std::chrono::milliseconds(2000));
    CHECK_FALSE(stopped(second));
}

// Finding. A protected process (protect.comm) that joins a cgroup after a
// cgroup-scope sigstop throttle started is stopped at its writes like any
// member: continue_due_locked checks protection with
// process_reason(pid, "", "", ""), an empty comm and exe, so protect.comm and
// protect.exe never match and it is never exempted. docs/policy.md: "never to a
// protected process (a protected process found in a throttled cgroup is
// exempted in the kernel)". Measured: a protected process writing 4 KiB every
// 100 ms made 14 writes in 4 s instead of ~40, and was seen stopped in 5 of 8
// samples.
TEST_CASE("hostile review 14: a protected process that joins a throttled cgroup is not stopped at its writes",
          "[hostile-review][throttle]")
{
    LoopMount disk {256};
    Cgroup2Child cgroup("dw-hr14-cg");
    const std::string rule = "hr14-protected";
    AgentRun agent(PolicyYaml()
                       .protect_comm("dw-hr14-prot")
                       .rule(rule)
                       .cgroup_scope()
                       .match("cgroup", {"*dw-hr14-cg*"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "1MiB/s")
                       .set("throttle_for", "60s"));
    REQUIRE(agent.started());
    ChildProcess writer =
        start_writer(disk.path() + "/flood.log", 200 * kMiB, "dw-hr14-flood", {"--cgroup", cgroup.path()});
    REQUIRE(agent.wait_for([&](const json &e) { return is_action(e, rule); }, std::chrono::seconds(15)));

    auto *writes = static_cast<std::atomic<long> *>(
        ::mmap(nullptr, sizeof(std::atomic<long>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    REQUIRE(writes != MAP_FAILED);
    new (writes) std::atomic<long>(0);
    Forked forked;
    const std::string procs = cgroup.path() + "/cgroup.procs";
    const std::string path = disk.path() + "/protected.log";
    const pid_t protected_pid = ::fork();
    REQUIRE(protected_pid >= 0);
    if (protected_pid == 0) {
        // Join the throttled cgroup, then write a little, steadily (a protected
        // daemon's log: 4 KiB every 100 ms).
        const int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, "0", 1) != 1)
            ::_exit(1);
        ::close(fd);
        writer_body("dw-hr14-prot", path.c_str(), 4096, 100000, kMiB, writes);
    }
    forked.add(protected_pid);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // joined and writing; a first stop may be how it is found
    const long before = writes->load();
    int stopped_samples = 0;
    for (int i = 0; i < 50; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        stopped_samples += stopped(protected_pid) ? 1 : 0;
    }
    const long made = writes->load() - before;
    INFO("protected process: " << made << " writes in 5 s (~50 unthrottled), stopped in " << stopped_samples
                               << " of 50 samples");
    CHECK(made >= 40);
    CHECK(stopped_samples <= 2);
    ::munmap(writes, sizeof(std::atomic<long>));
}

// Finding (stopped forever). state.json records a cgroup-scope sigstop
// throttle as `stopped_in: <cgroup>`; the guard (and a restarted agent's
// reconcile) continue whichever processes are stopped *in that cgroup now*.
// A member the kernel stopped that is then moved to another cgroup (a
// container runtime, systemd, or the user: the cgroup is theirs) is in no
// record the guard reads: SIGKILL the agent and it stays stopped. (Same for a
// member moved to a child cgroup, and for a throttled cgroup emptied and
// removed.) The kernel's record (dw_throttle_stopped, by tgid) knew it, but
// died with the agent.
TEST_CASE("hostile review 14: a stopped member moved out of a throttled cgroup is continued when the agent dies",
          "[hostile-review][throttle][lifecycle]")
{
    LoopMount disk {256};
    Cgroup2Child cgroup("dw-hr14-cg");
    Cgroup2Child elsewhere("dw-hr14-moved");
    const std::string rule = "hr14-moved";
    AgentRun agent(PolicyYaml()
                       .rule(rule)
                       .cgroup_scope()
                       .match("cgroup", {"*dw-hr14-cg*"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "1MiB/s")
                       .set("throttle_for", "60s"));
    REQUIRE(agent.started());
    REQUIRE(agent.guard_pid() > 0);
    ChildProcess writer =
        start_writer(disk.path() + "/flood.log", 200 * kMiB, "dw-hr14-flood", {"--cgroup", cgroup.path()});
    REQUIRE(agent.wait_for([&](const json &e) { return is_action(e, rule); }, std::chrono::seconds(15)));
    // Catch it stopped by the kernel (a 64 KiB write owes 62 ms at 1 MiB/s).
    bool caught = false;
    for (int i = 0; i < 2000 && !caught; ++i) {
        caught = stopped(writer.pid());
        if (!caught)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(caught);
    {
        std::ofstream procs(elsewhere.path() + "/cgroup.procs");
        procs << writer.pid() << std::flush;
        REQUIRE(procs.good());
    }
    agent.signal(SIGKILL);
    // The guard releases within milliseconds of the agent's death (benchmarks.md).
    std::this_thread::sleep_for(std::chrono::seconds(3));
    CHECK_FALSE(stopped(writer.pid()));
}

// Finding (escape). io_uring writes are counted at io_uring_complete, which
// runs in an io-wq worker (PF_IO_WORKER: charged, never stopped) or as the
// ring's task_work; the owner "is stopped at its own next write", but a
// writer that writes only through io_uring makes none. Measured with a
// 64 KiB x 8 io_uring writer throttled to 1 MiB/s: `stops` 0 and the
// allowance at -26.9 GB after 6 s (about 4.4 GB/s with IOSQE_ASYNC, 1.5 GB/s
// without); a single printf to a file was what stopped it in the first runs.
// (docs/security.md row 33b cites "the io_uring case of
// test_rule_conformance.cpp": no such file on main.)
TEST_CASE("hostile review 14: a throttled io_uring writer holds throttle_to", "[hostile-review][throttle]")
{
    LoopMount disk {1024};
    const std::string rule = "hr14-uring";
    AgentRun agent(PolicyYaml()
                       .rule(rule)
                       .match("comm", {"dw-hr14-*"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "1MiB/s")
                       .set("throttle_for", "60s"));
    REQUIRE(agent.started());
    const std::string path = disk.path() + "/uring.log";
    ChildProcess writer = start_writer(path, 900 * kMiB, "dw-hr14-uring", {"--mode", "io_uring"});
    REQUIRE(agent.wait_for([&](const json &e) { return is_action(e, rule); }, std::chrono::seconds(15)));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const long long start = file_size(path);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const long long grown = file_size(path) - start;
    INFO("io_uring writer throttled to 1 MiB/s wrote " << grown / double(kMiB) << " MiB in 3 s");
    // throttle_to x 3 s, the bank (0.1 s), one write of 8 x 64 KiB in flight, and the suite's 20%.
    CHECK(grown <= static_cast<long long>((3.0 * kMiB + 0.1 * kMiB + 0.5 * kMiB) * 1.2));
}

// Finding (escape; documented as "one write per SIGCONT", not bounded). The
// issue's "Done when": resuming it behind the agent's back does not help.
// A loop that sends SIGCONT to the throttled writer (its own user may) lets
// one write through per SIGCONT: with 1 MiB writes against 1 MiB/s it
// measured 155, 222, 392, 1036 and 2465 MiB/s per second (up to 2465x), and the
// SIGCONT flood cost the agent 15% of a core (a throttle.defied per SIGCONT
// through the ring buffer, with BPF_RB_FORCE_WAKEUP).
TEST_CASE("hostile review 14: a SIGCONT loop does not lift the throttle", "[hostile-review][throttle]")
{
    LoopMount disk {1024};
    const std::string rule = "hr14-sigcont";
    AgentRun agent(PolicyYaml()
                       .rule(rule)
                       .match("comm", {"dw-hr14-*"})
                       .when("4MiB/s", "250ms")
                       .action("throttle")
                       .set("throttle_to", "1MiB/s")
                       .set("throttle_for", "60s"));
    REQUIRE(agent.started());
    const std::string path = disk.path() + "/defiant.log";
    ChildProcess writer = start_writer(path, 900 * kMiB, "dw-hr14-defiant", {"--chunk", std::to_string(kMiB)});
    REQUIRE(agent.wait_for([&](const json &e) { return is_action(e, rule); }, std::chrono::seconds(15)));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::atomic<bool> done {false};
    std::atomic<long> sent {0};
    std::thread defier([&] {
        while (!done.load()) {
            if (::kill(writer.pid(), SIGCONT) == 0)
                ++sent;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a modest loop: 1000 SIGCONTs a second
        }
    });
    struct Join {
        std::atomic<bool> &done;
        std::thread &thread;
        ~Join()
        {
            done = true;
            thread.join();
        }
    } join {done, defier};
    const long sent_before = sent.load();
    const long long start = file_size(path);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const long long grown = file_size(path) - start;
    const long sigconts = sent.load() - sent_before;
    // Where the kernel has bpf_send_signal_task (6.13+) the SIGCONT is undone
    // before the writer runs (dw_sigcont_restop_btf): only a writer that wins
    // the race to user space gets a write in (measured here: ~1% of them on a
    // quiet machine, 8-12% with both cores busy compiling; bounded at a
    // quarter, against every one of them without restop).
    // Without it, each SIGCONT lets one write through. Either way every such
    // write is charged: the writer waits that much longer once the loop ends.
    const auto start_event = agent.wait_for([](const json &e) { return e.value("event", "") == "agent.start"; }, std::chrono::seconds(1));
    REQUIRE(start_event);
    const bool restop = start_event->dump().find("dw_sigcont_restop_btf") != std::string::npos;
    const long long allowed = static_cast<long long>((3.0 * kMiB + 0.1 * kMiB + kMiB) * 1.2);
    const long long leaked_writes = std::max(0LL, grown - allowed) / kMiB;
    INFO("writer throttled to 1 MiB/s under a loop of " << sigconts << " SIGCONTs wrote " << grown / double(kMiB)
                                                        << " MiB in 3 s (restop: " << restop << ")");
    CHECK(sigconts > 1000);
    if (restop)
        CHECK(leaked_writes <= sigconts / 4);
    else
        CHECK(leaked_writes <= sigconts);
    // Nothing more once the loop ends: it owes what it wrote.
    done = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long long after_loop = file_size(path);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    CHECK(file_size(path) - after_loop <= static_cast<long long>(2.1 * kMiB * 1.2));
}
