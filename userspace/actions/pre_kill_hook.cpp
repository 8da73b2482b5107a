#include "actions/pre_kill_hook.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>

#include "vocabulary/json_names.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

std::mutex unreaped_mutex;
std::vector<pid_t> unreaped;  // killed hooks not yet exited (a hook in uninterruptible sleep)

std::string signal_name(int signo)
{
    const char *abbrev = ::sigabbrev_np(signo);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signo);
}

}  // namespace

std::unique_ptr<HookRun> HookRun::start(const std::vector<std::string> &argv,
                                        const std::vector<std::string> &environment, double now_s, double timeout_s,
                                        std::string *error)
{
    if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
        *error = "pre_kill: argv[0] must be an absolute path";
        return nullptr;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        *error = std::string("pre_kill: pipe2: ") + errno_text(errno);
        return nullptr;
    }
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // Its own process group (the timeout kills whatever it started too), the
    // default signal dispositions and an empty mask (the agent's are not its).
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes,
                             POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char *> args;
    args.reserve(argv.size() + 1);
    for (const auto &arg : argv)
        args.push_back(const_cast<char *>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    env.insert(env.end(), environment.begin(), environment.end());
    std::vector<char *> envp;
    envp.reserve(env.size() + 1);
    for (auto &entry : env)
        envp.push_back(entry.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    const int failed = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attributes, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(fds[1]);
    if (failed != 0) {
        ::close(fds[0]);
        *error = "pre_kill: posix_spawn " + argv[0] + ": " + errno_text(failed);
        return nullptr;
    }
    std::unique_ptr<HookRun> run(new HookRun());
    run->argv_ = argv;
    run->pid_ = pid;
    run->pipe_fd_ = fds[0];
    run->started_s_ = now_s;
    run->deadline_s_ = now_s + timeout_s;
    return run;
}

void HookRun::drain()
{
    char buffer[4096];
    while (pipe_fd_ >= 0) {
        const ssize_t got = ::read(pipe_fd_, buffer, sizeof(buffer));
        if (got > 0) {
            output_bytes_ += static_cast<size_t>(got);
            const size_t room = kMaxOutputBytes - std::min(kMaxOutputBytes, output_.size());
            output_.append(buffer, std::min(room, static_cast<size_t>(got)));
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got == 0) {  // every writer closed it
            ::close(pipe_fd_);
            pipe_fd_ = -1;
        }
        return;  // EAGAIN: nothing more for now
    }
}

bool HookRun::poll(double now_s)
{
    if (finished_)
        return true;
    drain();
    if (!reaped_) {
        int status = 0;
        const pid_t got = ::waitpid(pid_, &status, WNOHANG);
        if (got == pid_) {
            reaped_ = true;
            status_ = status;
        }
    }
    if (!reaped_ && now_s >= deadline_s_) {
        timed_out_ = true;
        ::kill(-pid_, SIGKILL);  // the group: what it started goes too
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            reaped_ = true;
            status_ = status;
        }
    }
    // Over when reaped (output still buffered is read once more), or when it
    // timed out (a killed hook stuck in the kernel is reaped later).
    if (reaped_ || timed_out_) {
        drain();
        finished_ = true;
        ended_s_ = now_s;
    }
    return finished_;
}

nlohmann::json HookRun::result() const
{
    nlohmann::json result;
    result["argv"] = argv_;
    result["timed_out"] = timed_out_;
    result["exit_status"] = reaped_ && WIFEXITED(status_) ? nlohmann::json(WEXITSTATUS(status_)) : nlohmann::json();
    result["signal"] = reaped_ && WIFSIGNALED(status_) ? nlohmann::json(signal_name(WTERMSIG(status_)))
                       : timed_out_                    ? nlohmann::json("SIGKILL")
                                                       : nlohmann::json();
    result["duration_s"] = std::round((ended_s_ - started_s_) * 1000) / 1000;
    put_name(result, "output", output_);
    result["output_bytes"] = output_bytes_;
    return result;
}

HookRun::~HookRun()
{
    if (pipe_fd_ >= 0)
        ::close(pipe_fd_);
    if (reaped_ || pid_ <= 0)
        return;
    ::kill(-pid_, SIGKILL);
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_)
        return;
    std::lock_guard lock(unreaped_mutex);
    unreaped.push_back(pid_);
}

size_t reap_hooks()
{
    std::lock_guard lock(unreaped_mutex);
    for (auto it = unreaped.begin(); it != unreaped.end();) {
        const pid_t got = ::waitpid(*it, nullptr, WNOHANG);
        it = got == *it || (got < 0 && errno == ECHILD) ? unreaped.erase(it) : std::next(it);
    }
    return unreaped.size();
}

}  // namespace diskwatch
