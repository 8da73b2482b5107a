// dw-test-writer: a writer of known size for the integration tests. It writes
// exactly --bytes through the chosen syscall path, prints what the kernel said
// it wrote, and exits (so tests also prove that a writer which is gone before
// the refresh keeps its row).
//
//   dw-test-writer --mode write|pwrite64|writev|pwritev|pwritev2|sendfile|splice|copy_file_range|devnull|pipe
//                  --file PATH --bytes N [--chunk N] [--threads N] [--cgroup DIR] [--comm NAME]
//                  [--rate BYTES_PER_S] [--pace BYTES_PER_S] [--linger-ms N] [--ignore-sigterm 1]
//
// --rate keeps to a schedule (after a pause it catches up at full speed);
// --pace sleeps chunk/pace after every chunk (a producer with fixed work per
// write, which never catches up: what a throttle test needs).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
    std::string mode = "write";
    std::string file;
    long long bytes = 0;
    long long chunk = 1 << 20;
    int threads = 1;
    std::string cgroup;
    std::string comm;
    double rate = 0;  // bytes per second; 0 = as fast as possible
    double pace = 0;  // bytes per second, no catching up; 0 = off
    int linger_ms = 0;
};

[[noreturn]] void die(const std::string &what)
{
    std::fprintf(stderr, "dw-test-writer: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// Writes `length` bytes of `buffer` to fd through the chosen path; returns what
// the kernel reported (the tests compare against this, not the request).
long long write_once(const Options &options, int fd, const char *buffer, long long length, long long offset,
                     int source_fd)
{
    const size_t n = static_cast<size_t>(length);
    if (options.mode == "write" || options.mode == "devnull" || options.mode == "pipe")
        return ::write(fd, buffer, n);
    if (options.mode == "pwrite64")
        return ::pwrite(fd, buffer, n, offset);
    struct iovec iov[2] = {{const_cast<char *>(buffer), n / 2}, {const_cast<char *>(buffer) + n / 2, n - n / 2}};
    if (options.mode == "writev")
        return ::writev(fd, iov, 2);
    if (options.mode == "pwritev")
        return ::pwritev(fd, iov, 2, offset);
    if (options.mode == "pwritev2")
        return ::pwritev2(fd, iov, 2, offset, 0);
    if (options.mode == "sendfile") {
        off_t source_offset = 0;
        return ::sendfile(fd, source_fd, &source_offset, n);
    }
    if (options.mode == "copy_file_range") {
        loff_t source_offset = 0;
        return ::copy_file_range(source_fd, &source_offset, fd, nullptr, n, 0);
    }
    errno = EINVAL;
    die("unknown --mode " + options.mode);
}

long long write_share(const Options &options, long long share, long long base_offset)
{
    std::vector<char> buffer(static_cast<size_t>(options.chunk), 'x');
    int fd;
    int source_fd = -1;
    int pipe_fds[2] = {-1, -1};
    if (options.mode == "devnull") {
        fd = ::open("/dev/null", O_WRONLY);
    } else if (options.mode == "pipe") {
        if (::pipe(pipe_fds) != 0)
            die("pipe");
        fd = pipe_fds[1];
        // Drain the pipe so writes never block.
        std::thread([r = pipe_fds[0]] {
            char sink[65536];
            while (::read(r, sink, sizeof(sink)) > 0) {
            }
        }).detach();
    } else {
        // Appends like a log for the plain paths; sendfile, splice and
        // copy_file_range refuse O_APPEND destinations (EINVAL, EBADF).
        const bool append = options.threads == 1 && (options.mode == "write" || options.mode == "writev");
        fd = ::open(options.file.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : 0), 0644);
    }
    if (fd < 0)
        die("open " + options.file);
    if (options.mode == "sendfile" || options.mode == "copy_file_range") {
        // A source file of one chunk in the same directory.
        // A child process writes it, so its bytes are not this pid's.
        const std::string source = options.file + ".source." + std::to_string(::gettid());
        const pid_t child = ::fork();
        if (child == 0) {
            int out = ::open(source.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            _exit(out >= 0 && ::write(out, buffer.data(), buffer.size()) == static_cast<ssize_t>(buffer.size()) ? 0 : 1);
        }
        int status = 0;
        if (child < 0 || ::waitpid(child, &status, 0) != child || status != 0)
            die("write source");
        source_fd = ::open(source.c_str(), O_RDONLY);
        if (source_fd < 0)
            die("open source");
        ::unlink(source.c_str());
    }
    if (options.mode == "splice" && ::pipe(pipe_fds) != 0)
        die("pipe");

    const auto start = std::chrono::steady_clock::now();
    long long written = 0;
    while (written < share) {
        const long long length = std::min<long long>(options.chunk, share - written);
        long long got;
        if (options.mode == "splice") {
            // Fill the pipe with `length` bytes (at most the pipe's 64 KiB), then splice them out.
            const long long piece = std::min<long long>(length, 65536);
            if (::write(pipe_fds[1], buffer.data(), static_cast<size_t>(piece)) != piece)
                die("fill pipe");
            got = ::splice(pipe_fds[0], nullptr, fd, nullptr, static_cast<size_t>(piece), 0);
        } else {
            got = write_once(options, fd, buffer.data(), length, base_offset + written, source_fd);
        }
        if (got < 0)
            die(options.mode);
        if (got == 0)
            break;  // filesystem full: report what landed
        written += got;
        if (options.pace > 0)
            std::this_thread::sleep_for(std::chrono::duration<double>(static_cast<double>(got) / options.pace));
        if (options.rate > 0) {
            const auto due = start + std::chrono::duration<double>(static_cast<double>(written) / options.rate);
            std::this_thread::sleep_until(due);
        }
    }
    ::close(fd);
    return written;
}

}  // namespace

int main(int argc, char **argv)
{
    Options options;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--mode")
            options.mode = value;
        else if (key == "--file")
            options.file = value;
        else if (key == "--bytes")
            options.bytes = std::stoll(value);
        else if (key == "--chunk")
            options.chunk = std::stoll(value);
        else if (key == "--threads")
            options.threads = std::stoi(value);
        else if (key == "--cgroup")
            options.cgroup = value;
        else if (key == "--comm")
            options.comm = value;
        else if (key == "--rate")
            options.rate = std::stod(value);
        else if (key == "--ignore-sigterm")
            ::signal(SIGTERM, value == "1" ? SIG_IGN : SIG_DFL);  // a writer that only SIGKILL stops
        else if (key == "--pace")
            options.pace = std::stod(value);
        else if (key == "--linger-ms")
            options.linger_ms = std::stoi(value);
        else {
            std::fprintf(stderr, "dw-test-writer: unknown option %s\n", key.c_str());
            return 2;
        }
    }
    if (!options.cgroup.empty()) {
        // Join the cgroup before the first byte, as a container's process would be.
        int fd = ::open((options.cgroup + "/cgroup.procs").c_str(), O_WRONLY);
        if (fd < 0 || ::write(fd, "0", 1) != 1)
            die("join cgroup " + options.cgroup);
        ::close(fd);
    }
    if (!options.comm.empty())
        ::prctl(PR_SET_NAME, options.comm.c_str(), 0, 0, 0);

    std::atomic<long long> total{0};
    std::vector<std::thread> threads;
    const long long share = options.bytes / options.threads;
    for (int t = 0; t < options.threads; ++t) {
        const long long mine = t == options.threads - 1 ? options.bytes - share * (options.threads - 1) : share;
        if (options.threads == 1) {
            total += write_share(options, mine, 0);
        } else {
            threads.emplace_back([&, t, mine] { total += write_share(options, mine, share * t); });
        }
    }
    for (auto &thread : threads)
        thread.join();
    std::printf("pid %d wrote %lld\n", ::getpid(), total.load());
    std::fflush(stdout);
    if (options.linger_ms > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(options.linger_ms));
    return 0;
}
