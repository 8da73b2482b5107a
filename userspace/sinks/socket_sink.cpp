#include "sinks/socket_sink.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vocabulary/internal_errors.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

using Clock = std::chrono::steady_clock;

// How long the I/O thread sleeps when nothing happens: bounds how late a
// stalled peer is noticed and how often connect mode retries.
constexpr int kIdlePollMs = 100;
// At most this many lines go into one sendmsg().
constexpr size_t kMaxIov = 64;

}  // namespace

SocketSink::SocketSink(const SocketSinkOptions &options) : options_(options) {}

std::unique_ptr<SocketSink> SocketSink::open(const SocketSinkOptions &options, std::string *error)
{
    if (options.listen_path.empty() && options.connect_path.empty()) {
        if (error)
            *error = "socket sink: neither a path to listen on nor one to connect to";
        return nullptr;
    }
    std::unique_ptr<SocketSink> sink(new SocketSink(options));
    sink->wake_fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!sink->wake_fd_) {
        if (error)
            *error = std::string("eventfd: ") + errno_text(errno);
        return nullptr;
    }
    if (!options.listen_path.empty()) {
        UnixListenOptions listen_options;
        listen_options.mode = options.socket_mode;
        listen_options.group = options.socket_group;
        sink->listen_fd_ = listen_unix_stream(options.listen_path, listen_options, error);
        if (!sink->listen_fd_)
            return nullptr;
    }
    if (!options.connect_path.empty())
        sink->try_connect();  // a shipper that is not up yet is retried, not fatal
    sink->thread_ = std::thread([raw = sink.get()] { raw->run(); });
    return sink;
}

SocketSink::~SocketSink()
{
    stopping_ = true;
    wake();
    if (thread_.joinable())
        thread_.join();
    if (listen_fd_ && !options_.listen_path.empty())
        ::unlink(options_.listen_path.c_str());
}

std::string SocketSink::name() const
{
    if (!options_.listen_path.empty())
        return "socket:" + options_.listen_path;
    return "socket-connect:" + options_.connect_path;
}

void SocketSink::wake() const
{
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the thread will wake.
    [[maybe_unused]] auto written = ::write(wake_fd_.get(), &one, sizeof(one));
}

void SocketSink::publish(const Event &event)
{
    const std::string &json_line = event.line();
    bool queued = false;
    {
        std::lock_guard lock(mutex_);
        ++stats_.published;
        const size_t size = json_line.size() + 1;
        for (auto &peer : peers_) {
            if (peer->queued_bytes + size > options_.peer_queue_bytes) {
                ++peer->lost;
                ++stats_.dropped;
                continue;
            }
            if (peer->queued_bytes == 0)
                peer->last_progress = Clock::now();  // the stall clock starts when something waits
            std::string line;
            line.reserve(size);
            line.append(json_line);
            line.push_back('\n');
            peer->lines.push_back(std::move(line));
            peer->queued_bytes += size;
            queued = true;
        }
        if (!options_.connect_path.empty() && !outbound_connected_)
            ++stats_.dropped;  // the shipper we push to is down: its copy is lost
    }
    if (queued)
        wake();
}

void SocketSink::flush(int timeout_ms)
{
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            bool empty = std::all_of(peers_.begin(), peers_.end(),
                                     [](const auto &peer) { return peer->queued_bytes == 0; });
            if (empty)
                return;
        }
        if (Clock::now() >= deadline)
            return;
        wake();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

SinkStats SocketSink::stats() const
{
    std::lock_guard lock(mutex_);
    return stats_;
}

SocketSinkCounters SocketSink::counters() const
{
    std::lock_guard lock(mutex_);
    return counters_;
}

std::vector<SocketPeerStats> SocketSink::peers() const
{
    std::lock_guard lock(mutex_);
    std::vector<SocketPeerStats> result;
    for (const auto &peer : peers_)
        result.push_back({peer->id, peer->outbound, peer->pid, peer->queued_bytes, peer->delivered, peer->lost});
    return result;
}

// Called with mutex_ held (or before the thread starts).
void SocketSink::try_connect()
{
    next_connect_attempt_ = Clock::now() + options_.reconnect_interval;
    std::string error;
    UniqueFd fd = connect_unix_stream(options_.connect_path, true, &error);
    if (!fd) {
        ++counters_.connect_failures;
        stats_.last_error = error;
        return;
    }
    auto peer = std::make_unique<Peer>();
    peer->fd = std::move(fd);
    peer->id = next_peer_id_++;
    peer->outbound = true;
    peer->last_progress = Clock::now();
    peers_.push_back(std::move(peer));
    outbound_connected_ = true;
}

// Called with mutex_ held.
void SocketSink::accept_subscribers()
{
    for (;;) {
        UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                stats_.last_error = std::string("accept: ") + errno_text(errno);
            return;
        }
        size_t subscribers = std::count_if(peers_.begin(), peers_.end(),
                                           [](const auto &peer) { return !peer->outbound; });
        if (subscribers >= options_.max_subscribers) {
            ++counters_.subscribers_refused;
            continue;  // fd closes here
        }
        auto peer = std::make_unique<Peer>();
        if (auto credentials = peer_credentials(fd.get()))
            peer->pid = credentials->pid;
        peer->fd = std::move(fd);
        peer->id = next_peer_id_++;
        peer->last_progress = Clock::now();
        peers_.push_back(std::move(peer));
        ++counters_.subscribers_accepted;
    }
}

// Called with mutex_ held. Non-blocking: at most what the socket takes now.
bool SocketSink::write_pending(Peer &peer)
{
    while (peer.queued_bytes > 0) {
        iovec iov[kMaxIov];
        size_t count = 0;
        for (auto it = peer.lines.begin(); it != peer.lines.end() && count < kMaxIov; ++it, ++count) {
            size_t skip = count == 0 ? peer.front_sent : 0;
            iov[count].iov_base = it->data() + skip;
            iov[count].iov_len = it->size() - skip;
        }
        msghdr message {};
        message.msg_iov = iov;
        message.msg_iovlen = count;
        ssize_t written = ::sendmsg(peer.fd.get(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            stats_.last_error = "write to subscriber " + std::to_string(peer.id) + ": " + errno_text(errno);
            return false;
        }
        peer.last_progress = Clock::now();
        peer.queued_bytes -= static_cast<size_t>(written);
        size_t left = static_cast<size_t>(written);
        while (left > 0) {
            size_t remaining = peer.lines.front().size() - peer.front_sent;
            if (left < remaining) {
                peer.front_sent += left;
                break;
            }
            left -= remaining;
            peer.lines.pop_front();
            peer.front_sent = 0;
            ++peer.delivered;
            ++stats_.delivered;
        }
    }
    return true;
}

void SocketSink::run()
{
    while (!stopping_ && !catch_at_boundary("socket sink", [this] { serve(); }))
        std::this_thread::sleep_for(std::chrono::milliseconds(kIdlePollMs));
}

void SocketSink::serve()
{
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;  // peer id of each pollfd after the fixed ones
    while (!stopping_) {
        fds.clear();
        ids.clear();
        fds.push_back({wake_fd_.get(), POLLIN, 0});
        const size_t fixed = listen_fd_ ? 2 : 1;
        if (listen_fd_)
            fds.push_back({listen_fd_.get(), POLLIN, 0});
        {
            std::lock_guard lock(mutex_);
            for (const auto &peer : peers_) {
                short events = POLLIN;
                if (peer->queued_bytes > 0)
                    events |= POLLOUT;
                fds.push_back({peer->fd.get(), events, 0});
                ids.push_back(peer->id);
            }
        }
        int ready = ::poll(fds.data(), fds.size(), kIdlePollMs);
        if (ready < 0 && errno != EINTR) {
            std::lock_guard lock(mutex_);
            stats_.last_error = std::string("poll: ") + errno_text(errno);
            std::this_thread::sleep_for(std::chrono::milliseconds(kIdlePollMs));
            continue;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            [[maybe_unused]] auto drained = ::read(wake_fd_.get(), &count, sizeof(count));
        }

        std::lock_guard lock(mutex_);
        if (listen_fd_ && (fds[1].revents & POLLIN))
            accept_subscribers();

        const auto now = Clock::now();
        std::vector<uint64_t> to_close;
        std::vector<uint64_t> too_slow;
        for (size_t i = fixed; i < fds.size(); ++i) {
            const short revents = fds[i].revents;
            if (revents & (POLLERR | POLLNVAL)) {
                to_close.push_back(ids[i - fixed]);
                continue;
            }
            if (revents & POLLIN) {
                // Subscribers have nothing to say; read and discard so that
                // a chatty one cannot fill our receive buffer, and notice EOF.
                char scratch[4096];
                ssize_t got = ::recv(fds[i].fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    to_close.push_back(ids[i - fixed]);
                    continue;
                }
            }
            if ((revents & POLLHUP) && !(revents & POLLIN))
                to_close.push_back(ids[i - fixed]);
        }
        for (auto &peer : peers_) {
            if (std::find(to_close.begin(), to_close.end(), peer->id) != to_close.end())
                continue;
            if (!write_pending(*peer)) {
                to_close.push_back(peer->id);
                continue;
            }
            if (peer->queued_bytes > 0 && now - peer->last_progress > options_.stall_timeout)
                too_slow.push_back(peer->id);
        }

        auto close_peer = [&](uint64_t id, bool slow) {
            auto it = std::find_if(peers_.begin(), peers_.end(), [id](const auto &peer) { return peer->id == id; });
            if (it == peers_.end())
                return;
            // What it still had queued will never reach it.
            stats_.dropped += (*it)->lines.size();
            if ((*it)->outbound)
                outbound_connected_ = false;
            if (slow)
                ++counters_.subscribers_disconnected_slow;
            else
                ++counters_.subscribers_closed;
            peers_.erase(it);
        };
        for (uint64_t id : to_close)
            close_peer(id, false);
        for (uint64_t id : too_slow)
            close_peer(id, true);

        if (!options_.connect_path.empty() && !outbound_connected_ && now >= next_connect_attempt_)
            try_connect();
    }
}

}  // namespace diskwatch
