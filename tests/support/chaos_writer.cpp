// dw-chaos-writer: the writers of the chaos soak (tests/integration/test_agent_chaos.cpp),
// which write the way the world writes rather than politely.
//
//   dw-chaos-writer tracked --file PATH --comm NAME --seed N [--threads N] [--children 1]
//                   [--hostile-names 1] [--self-resume 1] [--cgroup DIR] [--bytes CAP]
//                   [--exit-after-ms N] [--ignore-sigterm 1]
//     Bursts of 4-64 KiB write() calls from --threads threads, all to one O_APPEND descriptor
//     of PATH, so PATH's size is exactly the bytes this pid wrote, even after a SIGKILL
//     mid-run. Renames itself now and then (PR_SET_NAME on the main thread: the process's
//     comm), to hostile names with --hostile-names (line feeds, quotes, invalid UTF-8).
//     --children 1: forks children now and then; each appends a burst to PATH.pid<its pid>
//     (its own bytes, its own file) and exits. --self-resume 1: a helper child (which never
//     writes) sends SIGCONT to the writer every 20-100 ms, so a SIGSTOP throttle is fought.
//     Stops writing at CAP bytes or on ENOSPC; SIGUSR1 makes it go quiet (alive, idle);
//     exits 0 after --exit-after-ms (0: never, until killed).
//
//   dw-chaos-writer churn --dir DIR --seed N --rate PER_S [--in-flight N] [--cgroup DIR]
//     Forks short-lived children at PER_S a second until SIGTERM: some exit at once, some
//     append a few hundred bytes to DIR/churn-<n> and exit at once (the process is gone
//     before anyone reads its /proc entry), some rename themselves to a hostile name first,
//     some fork a grandchild that writes after its parent is gone. Every byte is known: on
//     exit it prints "churn spawned N failed F bytes B" (bytes of the ones that exited 0).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

volatile sig_atomic_t quiet = 0;     // SIGUSR1
volatile sig_atomic_t stopping = 0;  // SIGTERM (churn)

struct Options {
    std::string mode;
    std::string file;
    std::string dir;
    std::string comm;
    std::string cgroup;
    unsigned long long seed = 1;
    int threads = 1;
    bool children = false;
    bool hostile_names = false;
    bool self_resume = false;
    bool ignore_sigterm = false;
    long long bytes = 64LL << 20;
    int exit_after_ms = 0;
    double rate = 20;
    int in_flight = 8;
};

[[noreturn]] void die(const std::string &what)
{
    std::fprintf(stderr, "dw-chaos-writer: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// Suffixes a process name gets when it renames itself: what a hostile or
// careless program calls itself (the kernel keeps 15 bytes of it).
constexpr std::array<const char *, 8> kHostileSuffixes = {"", "\n", "\"q\\", "\xff\xfe", " sp", "%s%n", "\t;x", "\x1b[2J"};

void rename_to(const std::string &name)
{
    ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
}

// Appends `length` bytes; false when the filesystem is full or gone.
bool append(int fd, const std::vector<char> &buffer, size_t length)
{
    return ::write(fd, buffer.data(), length) == static_cast<ssize_t>(length);
}

// A forked child lets go of the pipes its parent's parent reads (the test
// waits for them to close when it reaps the writer).
void let_go_of_output()
{
    const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
    ::close(null_fd);
}

void join_cgroup(const std::string &cgroup)
{
    if (cgroup.empty())
        return;
    const int fd = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1)
        die("join cgroup " + cgroup);
    ::close(fd);
}

// A child of a tracked writer: one burst to its own file, then exit.
[[noreturn]] void child_burst(const Options &options, unsigned long long seed)
{
    let_go_of_output();
    std::mt19937_64 rng(seed);
    const std::string path = options.file + ".pid" + std::to_string(::getpid());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        _exit(1);
    const std::vector<char> buffer(65536, 'c');
    const int writes = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < writes; ++i)
        if (!append(fd, buffer, 4096 + rng() % 61440))
            break;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 1000));
    _exit(0);
}

// A child that only sends SIGCONT to its parent (a supervisor that fights a
// SIGSTOP throttle); it dies with its parent.
void start_resumer(unsigned long long seed)
{
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child != 0)
        return;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent)
        _exit(0);
    let_go_of_output();
    std::mt19937_64 rng(seed);
    while (::kill(parent, SIGCONT) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 80));
    _exit(0);
}

int run_tracked(const Options &options)
{
    join_cgroup(options.cgroup);
    rename_to(options.comm);
    const int fd = ::open(options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open " + options.file);
    if (options.self_resume)
        start_resumer(options.seed ^ 0x5eedULL);

    std::atomic<long long> reserved{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < options.threads; ++t)
        threads.emplace_back([&, t] {
            std::mt19937_64 rng(options.seed * 131 + static_cast<unsigned long long>(t));
            const std::vector<char> buffer(65536, 'w');
            while (!done && !quiet) {
                const int writes = 1 + static_cast<int>(rng() % 16);
                for (int i = 0; i < writes && !quiet; ++i) {
                    const auto length = static_cast<long long>(4096 + rng() % 61440);
                    if (reserved.fetch_add(length) + length > options.bytes || !append(fd, buffer, static_cast<size_t>(length))) {
                        done = true;  // the cap, or the filesystem is full: what landed is in the file
                        break;
                    }
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 140));
            }
        });

    std::mt19937_64 rng(options.seed);
    const auto start = std::chrono::steady_clock::now();
    const auto exit_at = start + std::chrono::milliseconds(options.exit_after_ms);
    std::vector<pid_t> children;
    auto next_child = start + std::chrono::milliseconds(rng() % 1000);
    while (options.exit_after_ms == 0 || std::chrono::steady_clock::now() < exit_at) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
        if (options.hostile_names)
            rename_to(options.comm + kHostileSuffixes[rng() % kHostileSuffixes.size()]);
        if (options.children && !quiet && std::chrono::steady_clock::now() >= next_child) {
            const unsigned long long child_seed = rng();
            const pid_t child = ::fork();
            if (child == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                child_burst(options, child_seed);
            }
            if (child > 0)
                children.push_back(child);
            next_child = std::chrono::steady_clock::now() + std::chrono::milliseconds(300 + rng() % 1500);
        }
        std::erase_if(children, [](pid_t child) { return ::waitpid(child, nullptr, WNOHANG) == child; });
    }
    done = true;
    for (auto &thread : threads)
        thread.join();
    for (const pid_t child : children)
        ::waitpid(child, nullptr, 0);
    return 0;
}

// One short-lived child of the churn; returns the bytes it will have written
// when it exits 0 (a grandchild's are counted when the subreaper reaps it).
constexpr long long kGrandchildBytes = 777;

long long churn_child_bytes(unsigned long long index)
{
    return static_cast<long long>((index % 31 + 1) * 64);
}

[[noreturn]] void churn_child(const Options &options, unsigned long long index, unsigned kind)
{
    const std::string path = options.dir + "/churn-" + std::to_string(index % 8);
    const std::vector<char> buffer(4096, 's');
    if (kind == 2)
        rename_to(std::string("dwc-churn") + kHostileSuffixes[index % kHostileSuffixes.size()]);
    if (kind == 3 && ::fork() == 0) {
        // The grandchild writes after its parent is gone.
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        _exit(fd >= 0 && append(fd, buffer, kGrandchildBytes) ? 0 : 1);
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    _exit(fd >= 0 && append(fd, buffer, static_cast<size_t>(churn_child_bytes(index))) ? 0 : 1);
}

int run_churn(const Options &options)
{
    join_cgroup(options.cgroup);
    rename_to("dwc-churn");
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  // grandchildren are ours to reap (and count)
    std::mt19937_64 rng(options.seed);
    std::map<pid_t, long long> writing;  // child -> the bytes it writes
    long long bytes = 0;
    int spawned = 0, failed = 0;
    const auto reap = [&](int flags) {
        int status = 0;
        pid_t pid;
        while ((pid = ::waitpid(-1, &status, flags)) > 0) {
            const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            const auto it = writing.find(pid);
            const long long would = it == writing.end() ? kGrandchildBytes : it->second;
            if (it != writing.end())
                writing.erase(it);
            if (ok)
                bytes += would;
            else
                ++failed;
        }
    };
    const auto start = std::chrono::steady_clock::now();
    while (!stopping) {
        reap(WNOHANG);
        if (static_cast<int>(writing.size()) >= options.in_flight) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            continue;
        }
        const auto index = static_cast<unsigned long long>(spawned);
        const unsigned kind = static_cast<unsigned>(rng() % 4);  // 0: exits at once, 1: writes, 2: renamed, 3: + grandchild
        const pid_t child = ::fork();
        if (child < 0) {
            ++failed;
            continue;
        }
        if (child == 0) {
            if (kind == 0)
                _exit(0);
            let_go_of_output();
            churn_child(options, index, kind);
        }
        ++spawned;
        writing[child] = kind == 0 ? 0 : churn_child_bytes(index);
        std::this_thread::sleep_until(start + std::chrono::duration<double>(spawned / options.rate));
    }
    reap(0);  // every child and orphaned grandchild, until none is left (ECHILD)
    std::printf("churn spawned %d failed %d bytes %lld\n", spawned, failed, bytes);
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char **argv)
{
    Options options;
    if (argc < 2) {
        std::fprintf(stderr, "usage: dw-chaos-writer tracked|churn OPTIONS\n");
        return 2;
    }
    options.mode = argv[1];
    // One setter per option, each taking the option's value.
    using Setter = std::function<void(const std::string &)>;
    const auto flag = [](bool &field) -> Setter { return [&field](const std::string &v) { field = v == "1"; }; };
    const auto text = [](std::string &field) -> Setter { return [&field](const std::string &v) { field = v; }; };
    const std::map<std::string, Setter> setters = {
        {"--file", text(options.file)},
        {"--dir", text(options.dir)},
        {"--comm", text(options.comm)},
        {"--cgroup", text(options.cgroup)},
        {"--children", flag(options.children)},
        {"--hostile-names", flag(options.hostile_names)},
        {"--self-resume", flag(options.self_resume)},
        {"--ignore-sigterm", flag(options.ignore_sigterm)},
        {"--seed", [&](const std::string &v) { options.seed = std::stoull(v); }},
        {"--threads", [&](const std::string &v) { options.threads = std::max(1, std::stoi(v)); }},
        {"--bytes", [&](const std::string &v) { options.bytes = std::stoll(v); }},
        {"--exit-after-ms", [&](const std::string &v) { options.exit_after_ms = std::stoi(v); }},
        {"--rate", [&](const std::string &v) { options.rate = std::stod(v); }},
        {"--in-flight", [&](const std::string &v) { options.in_flight = std::max(1, std::stoi(v)); }},
    };
    for (int i = 2; i + 1 < argc; i += 2) {
        const auto setter = setters.find(argv[i]);
        if (setter == setters.end()) {
            std::fprintf(stderr, "dw-chaos-writer: unknown option %s\n", argv[i]);
            return 2;
        }
        setter->second(argv[i + 1]);
    }
    struct sigaction on_usr1 {};
    on_usr1.sa_handler = [](int) { quiet = 1; };
    ::sigaction(SIGUSR1, &on_usr1, nullptr);
    if (options.mode == "churn") {
        struct sigaction on_term {};
        on_term.sa_handler = [](int) { stopping = 1; };
        ::sigaction(SIGTERM, &on_term, nullptr);
        return run_churn(options);
    }
    if (options.mode != "tracked") {
        std::fprintf(stderr, "dw-chaos-writer: unknown mode %s\n", options.mode.c_str());
        return 2;
    }
    if (options.ignore_sigterm)
        ::signal(SIGTERM, SIG_IGN);
    return run_tracked(options);
}
