// Privilege (docs/security.md): every command that loads BPF, run by a user
// who cannot, says so plainly and exits 3 at once; nothing half-starts.
// Two such users: `nobody` (setgroups/setgid/setuid), and root inside a
// container that was given no capabilities (uid 0, every capability dropped
// from the bounding, permitted, effective and inheritable sets).
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "support/scratch.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"

using namespace diskwatch::test;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr auto kAtOnce = std::chrono::seconds(10);  // generous: "at once" on a loaded 2-core CI box

enum class Identity { nobody, root_without_capabilities };

struct Outcome {
    int status = -1;  // exit status, 128+signal, or -1 on timeout
    std::string out;
    std::string err;
    double seconds = 0;
};

[[noreturn]] void child_fail(const char *what)
{
    const std::string message = std::string("drop privileges: ") + what + ": " + std::strerror(errno) + "\n";
    (void)!::write(STDERR_FILENO, message.data(), message.size());
    _exit(120);
}

// Runs in the forked child before exec: becomes `identity`, for good.
void become(Identity identity)
{
    if (identity == Identity::nobody) {
        if (::setgroups(0, nullptr) != 0)
            child_fail("setgroups");
        if (::setgid(kNogroup) != 0)
            child_fail("setgid");
        if (::setuid(kNobody) != 0)
            child_fail("setuid");
        return;
    }
    // Root without capabilities: empty the bounding set (so exec cannot give
    // any back), the ambient set, and then the process's own sets.
    for (int cap = 0; cap <= 63; ++cap)
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            child_fail("PR_CAPBSET_DROP");
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] {};
    if (::syscall(SYS_capset, &header, data) != 0)
        child_fail("capset");
}

Outcome run_as(Identity identity, const std::vector<std::string> &argv, std::chrono::seconds bound)
{
    int out_pipe[2], err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    std::vector<char *> raw;
    for (const auto &arg : argv)
        raw.push_back(const_cast<char *>(arg.c_str()));
    raw.push_back(nullptr);
    const auto started = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        const int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, STDIN_FILENO);
        become(identity);
        ::execv(raw[0], raw.data());
        child_fail("execv");
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    Outcome outcome;
    const auto deadline = started + bound;
    int open_fds = 2;
    struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    while (open_fds > 0 && std::chrono::steady_clock::now() < deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (::poll(fds, 2, static_cast<int>(std::max<long long>(left.count(), 1))) <= 0)
            continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            char buffer[4096];
            const ssize_t got = ::read(fds[i].fd, buffer, sizeof(buffer));
            if (got > 0) {
                (i == 0 ? outcome.out : outcome.err).append(buffer, static_cast<size_t>(got));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    int status = 0;
    pid_t reaped = 0;
    while (std::chrono::steady_clock::now() < deadline && (reaped = ::waitpid(pid, &status, WNOHANG)) == 0)
        ::usleep(10000);
    if (reaped != pid) {
        ::kill(pid, SIGCONT);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        outcome.status = -1;
    } else {
        outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    for (const auto &fd : fds)
        if (fd.fd >= 0)
            ::close(fd.fd);
    outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return outcome;
}

// The subcommands the binary offers, from its --help (so a command added
// later is checked too, or fails here until someone says what it needs).
std::set<std::string> subcommands()
{
    std::string help;
    run({DW_BINARY, "--help"}, &help);
    std::set<std::string> names;
    std::istringstream lines(help);
    std::string line;
    bool in_list = false;
    while (std::getline(lines, line)) {
        if (line.rfind("SUBCOMMANDS", 0) == 0 || line.rfind("Subcommands:", 0) == 0) {
            in_list = true;
            continue;
        }
        if (in_list && line.empty())
            in_list = false;
        if (in_list && line.size() > 2 && line[0] == ' ') {
            std::istringstream words(line);
            std::string name;
            words >> name;
            names.insert(name);
        }
    }
    return names;
}

// A copy of the binary that `nobody` may execute, whatever the permissions of
// the build tree above it.
struct ReachableBinary {
    std::string dir;
    std::string path;
    ReachableBinary()
        : dir(make_owned_temp_dir("dw-priv")),  // swept if the binary is killed
          path(dir + "/ebpf-diskwatch")
    {
        ::chmod(dir.c_str(), 0755);
        std::filesystem::copy_file(DW_BINARY, path);
        ::chmod(path.c_str(), 0755);
    }
    ~ReachableBinary()
    {
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
};

// What each command is run with. Commands that load BPF must refuse; the
// others need no privilege and only have to end within the bound.
const std::map<std::string, std::vector<std::vector<std::string>>> kNeedsBpf = {
    {"doctor", {{"doctor"}, {"doctor", "--json"}}},
    {"top", {{"top"}, {"top", "-b", "-n", "1"}, {"top", "-b", "--json", "-n", "1", "-d", "1"}}},
    {"agent", {{"agent"}, {"agent", "--dry-run"}}},
};
// check-config reads a file; status and release talk to the running agent's
// control socket, which decides who may by SO_PEERCRED (tests/ecosystem);
// explain reads the flight record, /proc and the machine's configuration, and
// answers with what it may read (a record it cannot open is in its warnings).
const std::set<std::string> kNeedsNoPrivilege = {"check-config", "status", "release", "explain"};

}  // namespace

TEST_CASE("without root or CAP_BPF every command says so plainly and exits 3 at once", "[privilege][bpf]")
{
    if (!bpf_tests_can_run())
        return;  // the test needs root to become someone else
    ReachableBinary binary;
    const auto commands = subcommands();
    REQUIRE(commands.count("doctor") == 1);
    REQUIRE(commands.count("top") == 1);
    const auto identity = GENERATE(Identity::nobody, Identity::root_without_capabilities);
    const char *who = identity == Identity::nobody ? "nobody" : "root without capabilities";
    for (const auto &command : commands) {
        INFO("command " << command << ", run as " << who);
        if (kNeedsNoPrivilege.count(command))
            continue;
        const auto found = kNeedsBpf.find(command);
        if (found == kNeedsBpf.end())
            FAIL("new command '" << command
                                 << "': say in tests/integration/test_privileges.cpp whether it needs privileges");
        for (auto argv : found->second) {
            std::string shown;
            for (const auto &arg : argv)
                shown += arg + " ";
            argv.insert(argv.begin(), binary.path);
            const Outcome outcome = run_as(identity, argv, kAtOnce);
            INFO("ebpf-diskwatch " << shown << "-> exit " << outcome.status << " after " << outcome.seconds
                                   << " s\nstdout: " << outcome.out << "\nstderr: " << outcome.err);
            CHECK(outcome.status == 3);
            CHECK(outcome.seconds < 5.0);
            // Plainly: what is missing and what to do, on stderr; nothing on
            // stdout, where a consumer of --json would read a broken line.
            CHECK_THAT(outcome.err, Catch::Contains("root") && Catch::Contains("CAP_BPF") &&
                                        Catch::Contains("ebpf-diskwatch " + command));
            CHECK(outcome.out.empty());
        }
    }
}

TEST_CASE("the refusal is about privilege: the same binary runs --version as nobody and doctor as root", "[privilege][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    // The same binary as root succeeds where the unprivileged one refused:
    // the refusal above is about privilege, not a broken build.
    ReachableBinary binary;
    const Outcome outcome = run_as(Identity::nobody, {binary.path, "--version"}, kAtOnce);
    INFO(outcome.err);
    CHECK(outcome.status == 0);
    CHECK_THAT(outcome.out, Catch::Contains("ebpf-diskwatch"));
    auto doctor = ChildProcess::start({binary.path, "doctor"});
    auto status = doctor.wait(std::chrono::seconds(60));
    INFO(doctor.out() << doctor.err());
    CHECK(status == 0);
}
