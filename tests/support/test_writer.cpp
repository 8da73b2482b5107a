// dw-test-writer: a writer of known size for the integration tests. It writes
// exactly --bytes through the chosen syscall path, prints what the kernel said
// it wrote, and exits (so tests also prove that a writer which is gone before
// the refresh keeps its row).
//
//   dw-test-writer --mode MODE --file PATH --bytes N [--chunk N] [--threads N] [--cgroup DIR]
//                  [--comm NAME] [--rate BYTES_PER_S] [--pace BYTES_PER_S] [--linger-ms N]
//                  [--ignore-sigterm 1] [--direct 1] [--file-size N] [--unlink-after-open 1]
//                  [--start-when PATH] [--sigterm-pause 1] [--keep-going-when-full 1]
//
//   MODE: the syscalls write|pwrite64|writev|pwritev|pwritev2|sendfile|splice|copy_file_range;
//         io_uring (IORING_OP_WRITE, liburing), aio (io_submit + io_getevents), mmap (stores
//         through a shared mapping: the file is first sized with ftruncate), fallocate and
//         ftruncate (grow the file by --bytes, no data), rewrite (pwrite over the first
//         --file-size bytes of an existing file, again and again: no growth), devnull, pipe.
//   --rate keeps to a schedule (after a pause it catches up at full speed);
//   --pace sleeps chunk/pace after every chunk (a producer with fixed work per
//   write, which never catches up: what a throttle test needs).
//   --direct 1 opens the file O_DIRECT (chunks and offsets are then 4 KiB aligned).
//   --sigterm-pause 1: on SIGTERM it stops writing and waits (a minute) for SIGKILL, as a
//         writer that winds down slowly would.
//   --start-when PATH waits (up to a minute) until PATH exists before its first byte.
//   --unlink-after-open 1 deletes the file right after opening it (then writes: the
//         "deleted but still open and growing" case) and keeps it open until exit.
//   --keep-going-when-full 1: a chunk refused with ENOSPC or EDQUOT (a write, pwrite64,
//         writev, io_uring, AIO or fallocate call) is counted, skipped, and the writer
//         goes on with the next, as a writer that keeps trying on a full disk would; it
//         then prints "pid P wrote N nospace F", F the calls refused (without the option
//         such a refusal is fatal).
#include <fcntl.h>
#include <liburing.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
    bool direct = false;
    long long file_size = 0;
    bool unlink_after_open = false;
    std::string start_when;       // --start-when PATH: wait for it before writing
    std::string rename_to;        // --rename-to NAME: prctl(PR_SET_NAME) mid-flood,
    long long rename_after = 1;   // --rename-after BYTES: once this much is written
    bool keep_going_when_full = false;
};

// The calls the kernel refused with ENOSPC or EDQUOT (--keep-going-when-full), every thread.
std::atomic<long long> nospace_failures{0};

// A refusal that --keep-going-when-full counts and skips instead of dying on it.
bool counted_as_full(const Options &options, int error)
{
    if (!options.keep_going_when_full || (error != ENOSPC && error != EDQUOT))
        return false;
    ++nospace_failures;
    return true;
}

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

// io_uring: IORING_OP_WRITE, up to 8 in flight; returns the sum of the results.
long long io_uring_share(const Options &options, int fd, const char *buffer, long long share, long long base)
{
    struct io_uring ring;
    if (int err = io_uring_queue_init(8, &ring, 0); err < 0) {
        errno = -err;
        die("io_uring_queue_init");
    }
    // refused: bytes of requests the kernel refused because the disk was full
    // (--keep-going-when-full), or did not write of a short one: done with too.
    long long submitted = 0, written = 0, refused = 0;
    int in_flight = 0;
    while (written + refused < share || in_flight > 0) {
        while (in_flight < 8 && submitted < share) {
            const long long length = std::min<long long>(options.chunk, share - submitted);
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_write(sqe, fd, buffer, static_cast<unsigned>(length), static_cast<__u64>(base + submitted));
            io_uring_sqe_set_data64(sqe, static_cast<__u64>(length));
            submitted += length;
            ++in_flight;
        }
        io_uring_submit(&ring);
        struct io_uring_cqe *cqe;
        if (int err = io_uring_wait_cqe(&ring, &cqe); err < 0) {
            errno = -err;
            die("io_uring_wait_cqe");
        }
        if (cqe->res < 0 && !counted_as_full(options, -cqe->res)) {
            errno = -cqe->res;
            die("io_uring write");
        }
        const long long landed = std::max(cqe->res, 0);
        written += landed;
        if (options.keep_going_when_full)
            refused += static_cast<long long>(io_uring_cqe_get_data64(cqe)) - landed;
        io_uring_cqe_seen(&ring, cqe);
        --in_flight;
        if (written + refused >= submitted && submitted >= share && in_flight == 0)
            break;
    }
    io_uring_queue_exit(&ring);
    return written;
}

// Linux AIO through the raw syscalls (no libaio): up to 8 in flight.
long long aio_share(const Options &options, int fd, const char *buffer, long long share, long long base)
{
    aio_context_t context = 0;
    if (::syscall(SYS_io_setup, 8, &context) != 0)
        die("io_setup");
    std::vector<struct iocb> iocbs(8);
    long long submitted = 0, written = 0;
    int in_flight = 0;
    size_t next = 0;
    while (submitted < share || in_flight > 0) {
        while (in_flight < 8 && submitted < share) {
            const long long length = std::min<long long>(options.chunk, share - submitted);
            struct iocb *cb = &iocbs[next++ % iocbs.size()];
            std::memset(cb, 0, sizeof(*cb));
            cb->aio_lio_opcode = IOCB_CMD_PWRITE;
            cb->aio_fildes = static_cast<__u32>(fd);
            cb->aio_buf = reinterpret_cast<__u64>(buffer);
            cb->aio_nbytes = static_cast<__u64>(length);
            cb->aio_offset = base + submitted;
            if (::syscall(SYS_io_submit, context, 1L, &cb) != 1)
                die("io_submit");
            submitted += length;
            ++in_flight;
        }
        struct io_event events[8];
        const long got = ::syscall(SYS_io_getevents, context, 1L, 8L, events, nullptr);
        if (got < 0)
            die("io_getevents");
        for (long i = 0; i < got; ++i) {
            if (events[i].res < 0) {
                errno = static_cast<int>(-events[i].res);
                if (counted_as_full(options, errno))
                    continue;
                die("aio write");
            }
            written += events[i].res;
        }
        in_flight -= static_cast<int>(got);
    }
    ::syscall(SYS_io_destroy, context);
    return written;
}

// The paths that are not one syscall per chunk; returns the bytes written (or grown).
long long special_share(const Options &options, int fd, const char *buffer, long long share, long long base)
{
    if (options.mode == "io_uring")
        return io_uring_share(options, fd, buffer, share, base);
    if (options.mode == "aio")
        return aio_share(options, fd, buffer, share, base);
    if (options.mode == "fallocate") {
        if (::fallocate(fd, 0, base, share) != 0) {
            if (counted_as_full(options, errno))
                return 0;
            die("fallocate");
        }
        return share;
    }
    if (options.mode == "ftruncate") {
        if (::ftruncate(fd, base + share) != 0)
            die("ftruncate");
        return share;
    }
    if (options.mode == "mmap") {
        // Size the file (growth, no data), map it shared and store into every byte.
        if (::ftruncate(fd, base + share) != 0)
            die("ftruncate");
        char *map = static_cast<char *>(::mmap(nullptr, static_cast<size_t>(share), PROT_READ | PROT_WRITE, MAP_SHARED,
                                               fd, base));
        if (map == MAP_FAILED)
            die("mmap");
        for (long long done = 0; done < share; done += options.chunk)
            std::memcpy(map + done, buffer, static_cast<size_t>(std::min<long long>(options.chunk, share - done)));
        ::munmap(map, static_cast<size_t>(share));
        return share;
    }
    // rewrite: overwrite the first --file-size bytes in place until `share` is written.
    if (options.file_size <= 0)
        die("rewrite needs --file-size");
    long long written = 0, offset = 0;
    while (written < share) {
        const long long length = std::min({options.chunk, share - written, options.file_size - offset});
        const long long got = ::pwrite(fd, buffer, static_cast<size_t>(length), offset);
        if (got <= 0)
            die("rewrite");
        written += got;
        offset = (offset + got) % options.file_size;
    }
    return written;
}

long long write_share(const Options &options, long long share, long long base_offset)
{
    // 4 KiB aligned, for O_DIRECT.
    char *aligned = static_cast<char *>(std::aligned_alloc(4096, static_cast<size_t>((options.chunk + 4095) / 4096 * 4096)));
    std::memset(aligned, 'x', static_cast<size_t>(options.chunk));
    struct AlignedBuffer {
        char *p;
        size_t n;
        ~AlignedBuffer() { std::free(p); }
        char *data() const { return p; }
        size_t size() const { return n; }
    } buffer{aligned, static_cast<size_t>(options.chunk)};
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
        const bool append =
            options.threads == 1 && !options.direct && (options.mode == "write" || options.mode == "writev");
        const bool read_write = options.mode == "mmap";
        fd = ::open(options.file.c_str(),
                    (read_write ? O_RDWR : O_WRONLY) | O_CREAT | (append ? O_APPEND : 0) | (options.direct ? O_DIRECT : 0),
                    0644);
        if (fd >= 0 && options.unlink_after_open)
            ::unlink(options.file.c_str());
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
    if (options.mode == "io_uring" || options.mode == "aio" || options.mode == "mmap" || options.mode == "fallocate" ||
        options.mode == "ftruncate" || options.mode == "rewrite") {
        long long written = special_share(options, fd, buffer.data(), share, base_offset);
        ::close(fd);
        return written;
    }

    const auto start = std::chrono::steady_clock::now();
    long long written = 0, refused = 0;  // refused: chunks skipped on a full disk (--keep-going-when-full)
    while (written + refused < share) {
        const long long length = std::min<long long>(options.chunk, share - written - refused);
        long long got;
        if (options.mode == "splice") {
            // Fill the pipe with `length` bytes (at most the pipe's 64 KiB), then splice them out.
            const long long piece = std::min<long long>(length, 65536);
            if (::write(pipe_fds[1], buffer.data(), static_cast<size_t>(piece)) != piece)
                die("fill pipe");
            got = ::splice(pipe_fds[0], nullptr, fd, nullptr, static_cast<size_t>(piece), 0);
        } else {
            got = write_once(options, fd, buffer.data(), length, base_offset + written + refused, source_fd);
        }
        if (got < 0 && counted_as_full(options, errno)) {
            refused += length;
            continue;
        }
        if (got < 0)
            die(options.mode);
        if (got == 0)
            break;  // filesystem full: report what landed
        written += got;
        if (!options.rename_to.empty() && written >= options.rename_after && written - got < options.rename_after)
            ::prctl(PR_SET_NAME, options.rename_to.c_str());
        if (options.pace > 0)
            std::this_thread::sleep_for(std::chrono::duration<double>(static_cast<double>(got) / options.pace));
        if (options.rate > 0) {
            const auto due = start + std::chrono::duration<double>(static_cast<double>(written) / options.rate);
            std::this_thread::sleep_until(due);
        }
    }
    if (!options.unlink_after_open)
        ::close(fd);  // else held open until exit: the deleted-but-open file
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
        else if (key == "--rename-to")
            options.rename_to = value;
        else if (key == "--rename-after")
            options.rename_after = std::stoll(value);
        else if (key == "--rate")
            options.rate = std::stod(value);
        else if (key == "--ignore-sigterm")
            ::signal(SIGTERM, value == "1" ? SIG_IGN : SIG_DFL);  // a writer that only SIGKILL stops
        else if (key == "--pace")
            options.pace = std::stod(value);
        else if (key == "--linger-ms")
            options.linger_ms = std::stoi(value);
        else if (key == "--direct")
            options.direct = value == "1";
        else if (key == "--file-size")
            options.file_size = std::stoll(value);
        else if (key == "--sigterm-pause" && value == "1")
            ::signal(SIGTERM, [](int) {
                for (int i = 0; i < 600; ++i)
                    ::usleep(100000);  // no more writes, and still alive
                _exit(0);
            });
        else if (key == "--start-when")
            options.start_when = value;
        else if (key == "--unlink-after-open")
            options.unlink_after_open = value == "1";
        else if (key == "--keep-going-when-full")
            options.keep_going_when_full = value == "1";
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
    for (int waited = 0; !options.start_when.empty() && ::access(options.start_when.c_str(), F_OK) != 0; ++waited) {
        if (waited > 6000)
            die("waiting for " + options.start_when);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

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
    if (options.keep_going_when_full)
        std::printf("pid %d wrote %lld nospace %lld\n", ::getpid(), total.load(), nospace_failures.load());
    else
        std::printf("pid %d wrote %lld\n", ::getpid(), total.load());
    std::fflush(stdout);
    if (options.linger_ms > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(options.linger_ms));
    return 0;
}
