// dw-conform-writer: the writers of the rule conformance suite
// (tests/integration/test_rule_conformance.cpp, issue 14). They write the way
// real writers do (Suricata, databases, log shippers: bursts and flushes,
// rotation, forks, threads, io_uring, mmap, O_DIRECT) and count their OWN
// bytes: every byte the kernel says was written is added to a shared counter
// file (support/conform_counter.h) the test maps and samples, so a test
// measures the writer's own rate even while the writer is stopped.
//
//   dw-conform-writer --file PATH --counter PATH [options]
//
// Where and as whom:
//   --file PATH         the file written (with --rotate-every: PATH.0, PATH.1, ...; a
//                       thread T > 0 writes PATH.tT..., a forked child N writes PATH.cN...)
//   --counter PATH      the counter file (ConformCounter layout); slot 0 is this process
//   --comm NAME         prctl(PR_SET_NAME) before the first byte
//   --cgroup DIR        join this cgroup v2 directory before the first byte
//   --uid UID           then drop to UID (and its gid 65534-style: gid = UID) before the first byte
// How the bytes go (--io):
//   write (default)     write(2) appending (O_APPEND)
//   pwrite              pwrite64(2) at the file's end
//   direct              pwrite64(2) on an O_DIRECT descriptor (chunk and offsets 4 KiB aligned)
//   io_uring            IORING_OP_WRITE through liburing, --queue-depth in flight (default 4)
//   mmap                stores through a MAP_SHARED mapping of the file, grown with ftruncate
//                       8 MiB at a time; never msync'd (writeback finds the pages)
//   mmap-msync          the same, msync(MS_SYNC) after every chunk, over a 4 MiB region of the
//                       file stored again and again (msync cleans the pages; the next store
//                       dirties them again)
//   --chunk BYTES       bytes per write call (default 64 KiB; up to 1 MiB in the tests)
// When (--pattern; the schedule is shared by all threads of the process):
//   steady    --rate R                  R bytes/s (0: as fast as the page cache takes them);
//                                       behind the schedule (stopped, slow disk) it catches up
//   burst     --burst B --period MS     B bytes at full speed at the start of every period
//                                       (a burst that ends late starts the next one at once)
//   burst     --burst B --pause MS      B bytes at full speed, then MS of nothing, repeated
//   sawtooth  --low R1 --high R2 --period MS
//                                       the rate ramps from R1 to R2 over each period, then drops
//   window    --budget B --window MS [--burst B2] [--gap MS2]
//                                       never more than B bytes in ANY window of length MS
//                                       (the writer's clock; a write counts from its start to
//                                       its end): bursts of B2 (default B; whole chunks) as
//                                       soon as a whole burst fits and MS2 after the last
//                                       burst started, else waits
// Shapes:
//   --threads N         N threads share the schedule (each its own file)
//   --forks N           the process writes nothing itself: it forks a child every 1/N s (at most
//                       --in-flight K alive, default 4), each writes --fork-bytes B at the
//                       pattern's pace (its own schedule) and exits; counter slot 1+n is child n
//   --rotate-every B    a new file every B bytes (the old one closed; with --keep-files K only
//                       the newest K kept, the others deleted, as logrotate does)
//   --rename-every B    prctl(PR_SET_NAME, "<--rename-prefix><n>") every B bytes
//   --bytes N           stop after N bytes (0: never); --seconds S: stop after S s (0: never)
//   --ignore-sigterm 1  only SIGKILL stops it
//   --linger-s S        when done, stays alive (idle) S seconds before exiting
// Exits 0 when done (prints "pid P wrote N"). ENOSPC: waits 100 ms and tries again.
//
//   dw-conform-writer --sigcont PID --every-ms N [--uid UID] [--comm NAME] [--count N]
//     Sends SIGCONT to PID every N ms (as UID when given): a writer's own user resuming it
//     behind the agent's back. Prints "sent N" on SIGTERM or after --count signals.
//
//   dw-conform-writer --cgroup DIR --exec PROGRAM [ARGS...]
//     Joins the cgroup, then execs PROGRAM (the load generator, so that its cleanup can
//     cgroup.kill everything it forked).
#include <fcntl.h>
#include <grp.h>
#include <liburing.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/conform_counter.h"

namespace {

using Clock = std::chrono::steady_clock;
using diskwatch::test::ConformCounter;

struct Options {
    std::string file;
    std::string counter;
    std::string comm;
    std::string cgroup;
    int uid = -1;
    std::string io = "write";
    long long chunk = 64 << 10;
    int queue_depth = 4;
    std::string pattern = "steady";
    double rate = 0;
    long long burst = 0;
    int period_ms = 0;
    int pause_ms = 0;
    double low = 0, high = 0;
    long long budget = 0;
    int window_ms = 0;
    int gap_ms = 0;
    int threads = 1;
    double forks = 0;
    int in_flight = 4;
    long long fork_bytes = 0;
    long long rotate_every = 0;
    int keep_files = 0;
    long long rename_every = 0;
    std::string rename_prefix;
    long long bytes = 0;
    double seconds = 0;
    double linger_s = 0;
    // --sigcont mode
    pid_t sigcont_target = 0;
    int every_ms = 300;
    long long count = 0;
};

[[noreturn]] void die(const std::string &what)
{
    std::fprintf(stderr, "dw-conform-writer: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- the schedule: how many bytes the process may have written by now --------------------

// Shared by the threads of one process (a forked child starts its own).
class Schedule {
public:
    explicit Schedule(const Options &options) : options_(options), start_(Clock::now()) {}

    // Blocks until `length` more bytes may be written; false when the writer is done.
    bool claim(long long length)
    {
        std::unique_lock lock(mutex_);
        while (true) {
            if (done_locked())
                return false;
            const auto wait = wait_for_locked(length);
            if (wait <= 0) {
                claimed_ += length;
                in_flight_.push_back({Clock::now(), length});
                return true;
            }
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, 0.05)));
            lock.lock();
        }
    }

    // A claimed write finished with `written` bytes (maybe fewer than claimed, or none).
    void finish(long long claimed, long long written)
    {
        std::lock_guard lock(mutex_);
        claimed_ -= claimed - std::max(0LL, written);
        written_ += std::max(0LL, written);
        // The oldest in-flight claim of this size ends now.
        for (auto it = in_flight_.begin(); it != in_flight_.end(); ++it)
            if (it->bytes == claimed) {
                if (written > 0)
                    history_.push_back({it->start, Clock::now(), written});
                in_flight_.erase(it);
                break;
            }
        if (options_.pattern == "burst" && options_.pause_ms > 0 && written_ >= burst_end_ && in_flight_.empty()) {
            next_burst_ = Clock::now() + std::chrono::milliseconds(options_.pause_ms);
            burst_end_ += options_.burst;
        }
    }

    long long written() const
    {
        std::lock_guard lock(mutex_);
        return written_;
    }

private:
    struct Write {
        Clock::time_point start;
        Clock::time_point end;
        long long bytes;
    };
    struct Claim {
        Clock::time_point start;
        long long bytes;
    };

    bool done_locked() const
    {
        if (options_.bytes > 0 && claimed_ >= options_.bytes)
            return true;
        return options_.seconds > 0 && seconds_since(start_) >= options_.seconds;
    }

    // Seconds to wait before `length` more bytes fit the pattern (<= 0: now).
    double wait_for_locked(long long length)
    {
        const double t = seconds_since(start_);
        const double next = static_cast<double>(claimed_ + length);
        if (options_.pattern == "steady") {
            if (options_.rate <= 0)
                return 0;
            // Claimable when the schedule reaches the start of this chunk.
            return static_cast<double>(claimed_) / options_.rate - t;
        }
        if (options_.pattern == "sawtooth") {
            const double period = options_.period_ms / 1000.0;
            const double per_period = period * (options_.low + options_.high) / 2;
            const auto due = [&](double at) {
                const double n = std::floor(at / period), tau = at - n * period;
                return n * per_period + options_.low * tau + (options_.high - options_.low) * tau * tau / (2 * period);
            };
            if (due(t) >= static_cast<double>(claimed_))
                return 0;
            return 0.005;
        }
        if (options_.pattern == "burst" && options_.period_ms > 0) {
            const double period = options_.period_ms / 1000.0;
            const double allowed = (std::floor(t / period) + 1) * static_cast<double>(options_.burst);
            if (next <= allowed || claimed_ < allowed)
                return 0;
            return (std::floor(t / period) + 1) * period - t;
        }
        if (options_.pattern == "burst") {  // --pause
            if (burst_end_ == 0)
                burst_end_ = options_.burst;
            const double until = std::chrono::duration<double>(next_burst_ - Clock::now()).count();
            if (until > 0)
                return until;
            if (claimed_ < burst_end_)
                return 0;
            return 0.002;  // the burst's last writes are still in flight
        }
        if (options_.pattern == "window") {
            // Bytes of every write that ended less than a window ago, or is still in flight:
            // a window of length W that holds any byte of the next write starts after now - W.
            const auto window = std::chrono::milliseconds(options_.window_ms);
            const auto now = Clock::now();
            while (!history_.empty() && history_.front().end + window <= now)
                history_.pop_front();
            long long recent = 0;
            for (const auto &write : history_)
                recent += write.bytes;
            for (const auto &claim : in_flight_)
                recent += claim.bytes;
            // A burst is whole chunks: the most that fits --burst (and the budget).
            const long long wanted = std::min(options_.burst > 0 ? options_.burst : options_.budget, options_.budget);
            const long long burst = std::max(length, wanted / length * length);
            if (burst_written_ == 0) {
                // A burst starts only when all of it fits, and --gap after the last one started.
                const auto gap_left = last_burst_ + std::chrono::milliseconds(options_.gap_ms) - now;
                if (gap_left > Clock::duration::zero())
                    return std::chrono::duration<double>(gap_left).count();
                if (recent + burst <= options_.budget) {
                    last_burst_ = now;
                    burst_written_ = length;
                    if (burst_written_ >= burst)
                        burst_written_ = 0;
                    return 0;
                }
            } else if (recent + length <= options_.budget) {
                burst_written_ += length;
                if (burst_written_ >= burst)
                    burst_written_ = 0;
                return 0;
            }
            if (history_.empty())
                return 0.002;
            return std::max(0.001, std::chrono::duration<double>(history_.front().end + window - now).count());
        }
        errno = EINVAL;
        die("unknown --pattern " + options_.pattern);
    }

    const Options &options_;
    const Clock::time_point start_;
    mutable std::mutex mutex_;
    long long claimed_ = 0;
    long long written_ = 0;
    std::deque<Write> history_;
    std::vector<Claim> in_flight_;
    long long burst_end_ = 0;
    Clock::time_point next_burst_{};
    long long burst_written_ = 0;
    Clock::time_point last_burst_{};
};

// ---- one thread's files: rotation, renames, the byte count --------------------------------

class Sink {
public:
    Sink(const Options &options, Schedule &schedule, std::string base, ConformCounter &counter, int slot)
        : options_(options), schedule_(schedule), base_(std::move(base)), counter_(counter), slot_(slot)
    {
        buffer_ = static_cast<char *>(std::aligned_alloc(4096, static_cast<size_t>((options.chunk + 4095) / 4096 * 4096)));
        std::memset(buffer_, 'x', static_cast<size_t>(options.chunk));
        open_next();
        if (options_.io == "io_uring") {
            if (int err = io_uring_queue_init(static_cast<unsigned>(std::max(1, options_.queue_depth)), &ring_, 0); err < 0) {
                errno = -err;
                die("io_uring_queue_init");
            }
            ring_ready_ = true;
        }
    }
    ~Sink()
    {
        if (ring_ready_) {
            drain_ring(0);
            io_uring_queue_exit(&ring_);
        }
        unmap();
        if (fd_ >= 0)
            ::close(fd_);
        std::free(buffer_);
    }
    Sink(const Sink &) = delete;
    Sink &operator=(const Sink &) = delete;

    // Writes one chunk (claimed from the schedule); returns false when the schedule is done.
    bool step()
    {
        const long long length = options_.chunk;
        if (!schedule_.claim(length)) {
            return false;
        }
        if (options_.io == "io_uring") {
            uring_write(length);  // counted at its completion
            return true;
        }
        const long long written =
            options_.io == "mmap" || options_.io == "mmap-msync" ? store(length) : plain_write(length);
        account(written, length);
        return true;
    }

    // Waits for what io_uring still has in flight.
    void finish()
    {
        if (ring_ready_)
            drain_ring(0);
    }

private:
    void account(long long written, long long claimed)
    {
        if (written > 0) {
            counter_.add(slot_, static_cast<uint64_t>(written));
            file_bytes_ += written;
            total_ += written;
        }
        schedule_.finish(claimed, written);
        if (written <= 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));  // ENOSPC and the like: try again
            return;
        }
        if (options_.rename_every > 0 && total_ / options_.rename_every != (total_ - written) / options_.rename_every) {
            const std::string name = options_.rename_prefix + std::to_string(total_ / options_.rename_every);
            ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
        }
        if (options_.rotate_every > 0 && file_bytes_ >= options_.rotate_every)
            rotate();
    }

    std::string path_of(long long index) const
    {
        return options_.rotate_every > 0 ? base_ + "." + std::to_string(index) : base_;
    }

    void open_next()
    {
        const bool append = options_.io == "write";
        const bool mapped = options_.io == "mmap" || options_.io == "mmap-msync";
        int flags = (mapped ? O_RDWR : O_WRONLY) | O_CREAT | (append ? O_APPEND : 0) | O_CLOEXEC;
        if (options_.io == "direct")
            flags |= O_DIRECT;
        fd_ = ::open(path_of(file_index_).c_str(), flags, 0644);
        if (fd_ < 0)
            die("open " + path_of(file_index_));
        offset_ = 0;
        file_bytes_ = 0;
        if (options_.keep_files > 0 && file_index_ >= options_.keep_files)
            ::unlink(path_of(file_index_ - options_.keep_files).c_str());
    }

    void rotate()
    {
        if (ring_ready_)
            drain_ring(0);
        unmap();
        ::close(fd_);
        ++file_index_;
        open_next();
    }

    long long plain_write(long long length)
    {
        const size_t n = static_cast<size_t>(length);
        ssize_t got;
        if (options_.io == "write")
            got = ::write(fd_, buffer_, n);
        else
            got = ::pwrite(fd_, buffer_, n, offset_);
        if (got < 0 && errno != ENOSPC && errno != EINTR)
            die(options_.io);
        if (got > 0)
            offset_ += got;
        return got;
    }

    void unmap()
    {
        if (map_) {
            ::munmap(map_, static_cast<size_t>(map_length_));
            map_ = nullptr;
        }
    }

    // mmap: the mapping is the next 8 MiB of the file (grown first); mmap-msync: the
    // file's first 4 MiB, stored again and again, each chunk msync'd.
    long long store(long long length)
    {
        const bool sync = options_.io == "mmap-msync";
        const long long region = sync ? (4LL << 20) : (8LL << 20);
        if (!map_ || map_offset_ >= map_length_) {
            unmap();
            const long long base = sync ? 0 : offset_;
            if (::ftruncate(fd_, base + region) != 0) {
                if (errno == ENOSPC)
                    return 0;
                die("ftruncate");
            }
            void *map = ::mmap(nullptr, static_cast<size_t>(region), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, base);
            if (map == MAP_FAILED)
                die("mmap");
            map_ = static_cast<char *>(map);
            map_length_ = region;
            map_offset_ = 0;
        }
        const long long n = std::min(length, map_length_ - map_offset_);
        std::memcpy(map_ + map_offset_, buffer_, static_cast<size_t>(n));
        if (sync && ::msync(map_ + map_offset_, static_cast<size_t>(n), MS_SYNC) != 0)
            die("msync");
        map_offset_ += n;
        if (!sync)
            offset_ += n;
        return n;
    }

    // io_uring: submit one write at the file's end; reap completions so that at most
    // --queue-depth are in flight. The bytes count when their completion arrives.
    void uring_write(long long length)
    {
        if (in_flight_ >= options_.queue_depth)
            drain_ring(options_.queue_depth - 1);
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
        if (!sqe) {
            drain_ring(0);
            sqe = io_uring_get_sqe(&ring_);
        }
        io_uring_prep_write(sqe, fd_, buffer_, static_cast<unsigned>(length), static_cast<__u64>(offset_));
        io_uring_sqe_set_data64(sqe, static_cast<__u64>(length));
        offset_ += length;
        int submitted;
        while ((submitted = io_uring_submit(&ring_)) == -EINTR) {
        }
        if (submitted < 0) {
            errno = -submitted;
            die("io_uring_submit");
        }
        ++in_flight_;
    }

    // Reaps completions until at most `leave` are in flight; each counts its bytes.
    // (A rotation inside account() drains the rest first: in_flight_ is already
    // down by one, so the recursion ends.)
    void drain_ring(int leave)
    {
        while (in_flight_ > leave) {
            struct io_uring_cqe *cqe;
            int err = io_uring_wait_cqe(&ring_, &cqe);
            if (err == -EINTR)
                continue;
            if (err < 0) {
                errno = -err;
                die("io_uring_wait_cqe");
            }
            const long long claimed = static_cast<long long>(io_uring_cqe_get_data64(cqe));
            const long long res = cqe->res;
            io_uring_cqe_seen(&ring_, cqe);
            --in_flight_;
            if (res < 0 && res != -ENOSPC) {
                errno = static_cast<int>(-res);
                die("io_uring write");
            }
            account(res, claimed);
        }
    }

    const Options &options_;
    Schedule &schedule_;
    const std::string base_;
    ConformCounter &counter_;
    const int slot_;
    char *buffer_ = nullptr;
    int fd_ = -1;
    long long file_index_ = 0;
    long long offset_ = 0;
    long long file_bytes_ = 0;
    long long total_ = 0;
    char *map_ = nullptr;
    long long map_length_ = 0;
    long long map_offset_ = 0;
    struct io_uring ring_ {};
    bool ring_ready_ = false;
    int in_flight_ = 0;
};

// Writes with --threads threads under one schedule; returns the bytes written.
long long write_all(const Options &options, const std::string &base, ConformCounter &counter, int slot)
{
    Schedule schedule(options);
    std::vector<std::thread> threads;
    for (int t = 1; t < options.threads; ++t)
        threads.emplace_back([&, t] {
            Sink sink(options, schedule, base + ".t" + std::to_string(t), counter, slot);
            while (sink.step()) {
            }
            sink.finish();
        });
    {
        Sink sink(options, schedule, base, counter, slot);
        while (sink.step()) {
        }
        sink.finish();
    }
    for (auto &thread : threads)
        thread.join();
    return schedule.written();
}

// --forks: a child every 1/F s, at most --in-flight alive; each writes --fork-bytes.
long long fork_spread(const Options &options, ConformCounter &counter)
{
    const auto start = Clock::now();
    int alive = 0;
    long long spawned = 0;
    while (options.seconds <= 0 || seconds_since(start) < options.seconds) {
        while (alive > 0 && ::waitpid(-1, nullptr, alive >= options.in_flight ? 0 : WNOHANG) > 0)
            --alive;
        if (alive >= options.in_flight)
            continue;
        const int slot = static_cast<int>(1 + spawned);
        if (slot >= ConformCounter::kSlots) {
            errno = ENOSPC;
            die("more children than counter slots");
        }
        const pid_t child = ::fork();
        if (child < 0)
            die("fork");
        if (child == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            counter.set_pid(slot, ::getpid());
            Options mine = options;
            mine.bytes = options.fork_bytes;
            mine.seconds = 0;
            write_all(mine, options.file + ".c" + std::to_string(spawned), counter, slot);
            _exit(0);
        }
        ++spawned;
        ++alive;
        const auto due = start + std::chrono::duration<double>(static_cast<double>(spawned) / options.forks);
        std::this_thread::sleep_until(due);
    }
    while (::waitpid(-1, nullptr, 0) > 0) {
    }
    return 0;
}

int send_sigconts(const Options &options)
{
    static volatile sig_atomic_t stop = 0;
    ::signal(SIGTERM, [](int) { stop = 1; });
    long long sent = 0;
    while (!stop && (options.count <= 0 || sent < options.count)) {
        if (::kill(options.sigcont_target, SIGCONT) != 0)
            break;  // gone
        ++sent;
        std::this_thread::sleep_for(std::chrono::milliseconds(options.every_ms));
    }
    std::printf("sent %lld\n", sent);
    std::fflush(stdout);
    return 0;
}

void drop_to(int uid)
{
    if (uid < 0)
        return;
    if (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(uid)) != 0 || ::setuid(static_cast<uid_t>(uid)) != 0)
        die("drop to uid " + std::to_string(uid));
}

}  // namespace

int main(int argc, char **argv)
{
    Options options;
    std::vector<char *> exec_argv;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--exec") {
            exec_argv.assign(argv + i + 1, argv + argc);
            exec_argv.push_back(nullptr);
            break;
        }
        if (key == "--file") options.file = value;
        else if (key == "--counter") options.counter = value;
        else if (key == "--comm") options.comm = value;
        else if (key == "--cgroup") options.cgroup = value;
        else if (key == "--uid") options.uid = std::stoi(value);
        else if (key == "--io") options.io = value;
        else if (key == "--chunk") options.chunk = std::stoll(value);
        else if (key == "--queue-depth") options.queue_depth = std::stoi(value);
        else if (key == "--pattern") options.pattern = value;
        else if (key == "--rate") options.rate = std::stod(value);
        else if (key == "--burst") options.burst = std::stoll(value);
        else if (key == "--period") options.period_ms = std::stoi(value);
        else if (key == "--pause") options.pause_ms = std::stoi(value);
        else if (key == "--low") options.low = std::stod(value);
        else if (key == "--high") options.high = std::stod(value);
        else if (key == "--budget") options.budget = std::stoll(value);
        else if (key == "--window") options.window_ms = std::stoi(value);
        else if (key == "--gap") options.gap_ms = std::stoi(value);
        else if (key == "--threads") options.threads = std::max(1, std::stoi(value));
        else if (key == "--forks") options.forks = std::stod(value);
        else if (key == "--in-flight") options.in_flight = std::max(1, std::stoi(value));
        else if (key == "--fork-bytes") options.fork_bytes = std::stoll(value);
        else if (key == "--rotate-every") options.rotate_every = std::stoll(value);
        else if (key == "--keep-files") options.keep_files = std::stoi(value);
        else if (key == "--rename-every") options.rename_every = std::stoll(value);
        else if (key == "--rename-prefix") options.rename_prefix = value;
        else if (key == "--bytes") options.bytes = std::stoll(value);
        else if (key == "--seconds") options.seconds = std::stod(value);
        else if (key == "--linger-s") options.linger_s = std::stod(value);
        else if (key == "--ignore-sigterm") ::signal(SIGTERM, value == "1" ? SIG_IGN : SIG_DFL);
        else if (key == "--sigcont") options.sigcont_target = std::stoi(value);
        else if (key == "--every-ms") options.every_ms = std::stoi(value);
        else if (key == "--count") options.count = std::stoll(value);
        else {
            std::fprintf(stderr, "dw-conform-writer: unknown option %s\n", key.c_str());
            return 2;
        }
    }
    if (!exec_argv.empty()) {
        if (!options.cgroup.empty()) {
            const int fd = ::open((options.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0 || ::write(fd, "0", 1) != 1)
                die("join cgroup " + options.cgroup);
            ::close(fd);
        }
        ::execv(exec_argv[0], exec_argv.data());
        die(std::string("exec ") + exec_argv[0]);
    }
    if (!options.comm.empty())
        ::prctl(PR_SET_NAME, options.comm.c_str(), 0, 0, 0);
    if (options.sigcont_target > 0) {
        drop_to(options.uid);
        return send_sigconts(options);
    }
    if (options.file.empty() || options.counter.empty()) {
        std::fprintf(stderr, "dw-conform-writer: --file and --counter are required\n");
        return 2;
    }
    if (options.io == "direct" && options.chunk % 4096 != 0) {
        std::fprintf(stderr, "dw-conform-writer: --io direct needs a 4 KiB multiple --chunk\n");
        return 2;
    }
    if (!options.cgroup.empty()) {
        // Join the cgroup before the first byte, as a container's process would be.
        const int fd = ::open((options.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, "0", 1) != 1)
            die("join cgroup " + options.cgroup);
        ::close(fd);
    }
    ConformCounter counter = ConformCounter::open(options.counter);  // before dropping privileges
    counter.set_pid(0, ::getpid());
    drop_to(options.uid);
    if (options.forks > 0)
        fork_spread(options, counter);
    else
        write_all(options, options.file, counter, 0);
    std::printf("pid %d wrote %llu\n", ::getpid(), static_cast<unsigned long long>(counter.total()));
    std::fflush(stdout);
    if (options.linger_s > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(options.linger_s));
    return 0;
}
