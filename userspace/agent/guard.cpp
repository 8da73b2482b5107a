#include "agent/guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>

#include "actions/enforcement_vocabulary.h"
#include "actions/held_state.h"
#include "events/events.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

uint64_t monotonic_ns()
{
    timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

volatile sig_atomic_t g_guard_stop = 0;

void on_guard_signal(int) { g_guard_stop = 1; }

// One NDJSON line to the agent's event file (appended: the agent is dead or
// hung, so nobody else writes it now) or to stdout.
void publish(const std::string &json_out, const std::string &line)
{
    const int fd = json_out.empty() || json_out == "-"
                       ? ::dup(STDOUT_FILENO)
                       : ::open(json_out.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    const std::string text = line + "\n";
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += static_cast<size_t>(n);
    }
    ::close(fd);
}

// Releases what the state file lists as this agent's; what another agent
// wrote there since (a restart raced us) is not ours to let go.
size_t release_for(const GuardOptions &options, const std::string &host, const std::string &why)
{
    std::string error;
    const auto state = load_held_state(options.state_dir, &error);
    if (!error.empty())
        spdlog::warn("guard: {}", error);
    if (state && state->agent_pid != options.agent_pid)
        return 0;
    const auto released = release_held(state, options.state_dir, options.cgroup2_mount);
    for (const auto &release : released) {
        const Event event =
            release_event(host, released_subject(release), to_string(release.mechanism), "guard: " + why);
        publish(options.json_out, event.line());
        spdlog::warn("guard: released {} {} ({})", to_string(release.mechanism),
                     release.mechanism == Mechanism::sigstop ? "pid " + std::to_string(release.pid) : release.cgroup,
                     why);
    }
    return released.size();
}

}  // namespace

int run_guard(const GuardOptions &options)
{
    ::prctl(PR_SET_NAME, "diskwatch-guard");  // not "exe" (exec of /proc/self/exe) in ps and top
    struct sigaction action {};
    action.sa_handler = on_guard_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    signal(SIGHUP, SIG_IGN);  // a reload is the agent's; a terminal hangup is not a reason to leave
    // systemd's watchdog aborts a hung agent with SIGABRT, sent to every
    // process of the unit (KillMode=control-group): the guard is there for
    // exactly that moment, so it stays, sees the agent exit and releases. (An
    // abort() of the guard's own still works: abort() restores the default.)
    signal(SIGABRT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    const std::string host = local_host_name();
    const std::string agent_name = "the agent (pid " + std::to_string(options.agent_pid) + ")";
    void *mapped = ::mmap(nullptr, sizeof(Guard::Page), PROT_READ, MAP_SHARED, options.heartbeat_fd, 0);
    if (mapped == MAP_FAILED) {
        spdlog::error("guard: mmap of the heartbeat: {}", errno_text(errno));
        return 1;
    }
    const auto *page = static_cast<const Guard::Page *>(mapped);
    const int agent = static_cast<int>(::syscall(SYS_pidfd_open, options.agent_pid, 0));
    if (agent < 0) {
        // Gone before we looked: release at once.
        release_for(options, host, agent_name + " is gone");
        return 0;
    }
    const auto hang_ns = static_cast<uint64_t>(options.hang_s * 1e9);
    uint64_t last_release_ns = 0;
    uint64_t stop_deadline_ns = 0;
    for (;;) {
        pollfd fd {agent, POLLIN, 0};
        const bool holding = page->holding.load(std::memory_order_relaxed) != 0;
        const int ready = ::poll(&fd, 1, holding || g_guard_stop ? 100 : 1000);
        if (ready > 0 && (fd.revents & (POLLIN | POLLHUP))) {
            release_for(options, host, agent_name + " exited");
            return 0;
        }
        const uint64_t now = monotonic_ns();
        if (g_guard_stop && stop_deadline_ns == 0)
            stop_deadline_ns = now + static_cast<uint64_t>(options.stop_wait_s * 1e9);
        if (stop_deadline_ns && now >= stop_deadline_ns) {
            release_for(options, host, "stopping, and " + agent_name + " did not exit in time");
            return 0;
        }
        const uint64_t beat = page->beat_ns.load(std::memory_order_acquire);
        // A hung agent: release, and again every second while it stays silent
        // (a thread of it that still runs may stop a writer again).
        if (holding && beat != 0 && now > beat + hang_ns && now >= last_release_ns + 1000000000ull) {
            last_release_ns = now;
            char silent[32];
            std::snprintf(silent, sizeof(silent), "%.1f", static_cast<double>(now - beat) / 1e9);
            release_for(options, host, agent_name + " has not run its loop for " + silent + " s");
        }
    }
}

std::unique_ptr<Guard> Guard::start(const std::string &state_dir, const std::string &cgroup2_mount,
                                    const std::string &json_out, std::string *error)
{
    const int memfd = ::memfd_create("ebpf-diskwatch-heartbeat", MFD_CLOEXEC);
    if (memfd < 0) {
        *error = std::string("guard: memfd_create: ") + errno_text(errno);
        return nullptr;
    }
    if (::ftruncate(memfd, sizeof(Page)) != 0) {
        *error = std::string("guard: ftruncate: ") + errno_text(errno);
        ::close(memfd);
        return nullptr;
    }
    void *mapped = ::mmap(nullptr, sizeof(Page), PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (mapped == MAP_FAILED) {
        *error = std::string("guard: mmap: ") + errno_text(errno);
        ::close(memfd);
        return nullptr;
    }
    // The page's atomics begin their lifetime here (the memfd is zero-filled).
    Page *page = std::construct_at(static_cast<Page *>(mapped));
    page->beat_ns.store(0);
    page->holding.store(0);
    std::unique_ptr<Guard> guard(new Guard(memfd, page, state_dir, cgroup2_mount, json_out));
    if (!guard->spawn(error))
        return nullptr;
    return guard;
}

bool Guard::spawn(std::string *error)
{
    // Everything the child needs is built before fork: between fork and exec
    // a multi-threaded process may only make async-signal-safe calls.
    constexpr int kHeartbeatFd = 3;
    char hang[32];
    std::snprintf(hang, sizeof(hang), "%.3f", kGuardHangS);
    std::vector<std::string> args = {"ebpf-diskwatch", "guard",           "--agent-pid",
                                     std::to_string(::getpid()),   "--state-dir",     state_dir_,
                                     "--heartbeat-fd",             std::to_string(kHeartbeatFd),
                                     "--hang-seconds",             hang};
    if (!cgroup2_mount_.empty())
        args.insert(args.end(), {"--cgroup2", cgroup2_mount_});
    if (!json_out_.empty())
        args.insert(args.end(), {"--json-out", json_out_});
    std::vector<char *> argv;
    argv.reserve(args.size() + 1);
    for (auto &arg : args)
        argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int memfd = memfd_;
    const pid_t child = ::fork();
    if (child < 0) {
        *error = std::string("guard: fork: ") + errno_text(errno);
        return false;
    }
    if (child == 0) {
        // The heartbeat on fd 3 without close-on-exec; every other descriptor
        // (BPF links and maps, the state dir's lock, sockets) closed, so the
        // guard holds nothing of the agent's alive.
        if (memfd == kHeartbeatFd)
            ::fcntl(kHeartbeatFd, F_SETFD, 0);
        else if (::dup2(memfd, kHeartbeatFd) < 0)
            ::_exit(127);
        ::syscall(SYS_close_range, kHeartbeatFd + 1, ~0U, 0);
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
    }
    pid_ = child;
    return true;
}

Guard::~Guard()
{
    // The agent has released everything (or is about to exit): the guard
    // sees the exit on its pidfd, finds nothing left to release, and exits.
    // Reaped here when it already has; otherwise it is the init's to reap.
    if (pid_ > 0)
        ::waitpid(pid_, nullptr, WNOHANG);
    if (page_)
        ::munmap(page_, sizeof(Page));
    if (memfd_ >= 0)
        ::close(memfd_);
}

void Guard::beat(bool holding)
{
    holding_ = holding;
    if (!armed_)
        return;
    page_->holding.store(holding ? 1 : 0, std::memory_order_relaxed);
    page_->beat_ns.store(monotonic_ns(), std::memory_order_release);
}

void Guard::arm()
{
    armed_ = true;
    beat(holding_);
}

bool Guard::alive()
{
    if (pid_ <= 0)
        return false;
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_ || (reaped < 0 && errno == ECHILD)) {
        pid_ = -1;
        return false;
    }
    return true;
}

bool Guard::restart(std::string *error)
{
    return spawn(error);
}

}  // namespace diskwatch
