// The agent speaks systemd's notify protocol (sd_notify(3); the unit is
// Type=notify with WatchdogSec=): READY=1 once every program is attached, a
// watchdog keep-alive from its main loop and only from it, RELOADING=1 then
// READY=1 around each reload, STOPPING=1 on stop. A datagram socket plays
// the service manager here, as systemd's NOTIFY_SOCKET is; the qemu guest
// with systemd as PID 1 is the whole story (issue 17).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ecosystem/ecosystem_support.h"
#include "support/agent_run.h"
#include "support/scratch.h"
#include "support/spawn.h"

using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// One environment variable for the agents started in a scope (they inherit it).
class ScopedEnvironment {
public:
    ScopedEnvironment(const char *name, const std::string &value) : name_(name) { ::setenv(name, value.c_str(), 1); }
    ~ScopedEnvironment() { ::unsetenv(name_); }
    ScopedEnvironment(const ScopedEnvironment &) = delete;
    ScopedEnvironment &operator=(const ScopedEnvironment &) = delete;

private:
    const char *name_;
};

struct Notice {
    std::string text;
    pid_t sender = 0;
    Clock::time_point at;
};

// The service manager's end: a SOCK_DGRAM socket that learns each sender's pid.
class NotifySocket {
public:
    explicit NotifySocket(const std::string &path) : path_(path)
    {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un address {};
        address.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof(address.sun_path));
        path.copy(address.sun_path, path.size());
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&address), sizeof(address)) == 0);
        const int on = 1;
        REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0);
        timeval timeout {0, 100 * 1000};
        REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) == 0);
    }
    ~NotifySocket()
    {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    NotifySocket(const NotifySocket &) = delete;
    NotifySocket &operator=(const NotifySocket &) = delete;

    // Reads whatever came, for `duration`.
    void read_for(std::chrono::milliseconds duration)
    {
        const auto until = Clock::now() + duration;
        while (Clock::now() < until) {
            char text[4096];
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
            iovec io {text, sizeof(text)};
            msghdr message {};
            message.msg_iov = &io;
            message.msg_iovlen = 1;
            message.msg_control = control;
            message.msg_controllen = sizeof(control);
            const ssize_t n = ::recvmsg(fd_, &message, 0);
            if (n <= 0)
                continue;
            Notice notice {std::string(text, static_cast<size_t>(n)), 0, Clock::now()};
            for (cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header))
                if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS) {
                    ucred credentials {};
                    std::memcpy(&credentials, CMSG_DATA(header), sizeof(credentials));
                    notice.sender = credentials.pid;
                }
            notices.push_back(std::move(notice));
        }
    }
    // Waits until a notice containing `needle` came; true if it did.
    bool wait_for(const std::string &needle, std::chrono::milliseconds timeout, size_t from = 0)
    {
        const auto until = Clock::now() + timeout;
        while (true) {
            for (size_t i = from; i < notices.size(); ++i)
                if (notices[i].text.find(needle) != std::string::npos)
                    return true;
            if (Clock::now() >= until)
                return false;
            read_for(100ms);
        }
    }
    size_t count(const std::string &needle, size_t from = 0) const
    {
        size_t found = 0;
        for (size_t i = from; i < notices.size(); ++i)
            found += notices[i].text.find(needle) != std::string::npos;
        return found;
    }
    std::string all() const
    {
        std::string text;
        for (const auto &notice : notices)
            text += "[" + std::to_string(notice.sender) + "] " + notice.text + "\n";
        return text;
    }

    std::vector<Notice> notices;

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace

TEST_CASE("the agent tells systemd it is ready, reloading and stopping, and feeds the watchdog only while its loop runs",
          "[agent][systemd][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    TempDir dir("dw-notify-");
    NotifySocket manager(dir.file("notify"));
    // WatchdogSec=2s: a keep-alive at least every second. No WATCHDOG_PID:
    // sd_watchdog_enabled() then trusts the variable to be ours.
    ScopedEnvironment notify_socket("NOTIFY_SOCKET", dir.file("notify"));
    ScopedEnvironment watchdog("WATCHDOG_USEC", "2000000");
    AgentRun agent("interval: 250ms\nrules: []\n");
    INFO(agent.stderr_text());
    REQUIRE(agent.started());

    // Ready once attached: agent.start is on the stream before READY=1 is sent.
    REQUIRE(manager.wait_for("READY=1", 30s));
    INFO("notices:\n" << manager.all());
    CHECK(manager.count("STATUS=watching with ") >= 1);

    // Fed while the loop runs: about one keep-alive a second, all from the agent itself.
    const size_t before_run = manager.notices.size();
    manager.read_for(5s);
    CHECK(manager.count("WATCHDOG=1", before_run) >= 3);
    for (const auto &notice : manager.notices)
        CHECK(notice.sender == agent.pid());  // never its guard, which inherits the environment

    // A loop that does not run (here: the whole agent stopped) feeds nothing.
    agent.signal(SIGSTOP);
    manager.read_for(300ms);  // what was already on its way
    const size_t stopped_at = manager.notices.size();
    manager.read_for(3s);
    agent.signal(SIGCONT);
    CHECK(manager.count("WATCHDOG=1", stopped_at) == 0);
    const size_t resumed_at = manager.notices.size();
    CHECK(manager.wait_for("WATCHDOG=1", 5s, resumed_at));

    // A reload, announced and ended (the unit's ExecReload sends SIGHUP).
    const size_t before_reload = manager.notices.size();
    agent.signal(SIGHUP);
    REQUIRE(manager.wait_for("RELOADING=1", 20s, before_reload));
    CHECK(manager.wait_for("READY=1", 20s, before_reload));

    // Stopping, before it releases and exits.
    const size_t before_stop = manager.notices.size();
    CHECK(agent.stop(20s) == 0);
    manager.read_for(300ms);
    CHECK(manager.count("STOPPING=1", before_stop) == 1);
}
