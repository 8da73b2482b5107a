// `--json-socket PATH`: the NDJSON event stream on a unix stream socket, for
// any number of subscribers (socat, nc -U, a shipper's exec source, and later
// `top` attached to a running agent). With `--json-socket-connect PATH` the
// agent is the client instead and pushes the stream into a shipper that
// listens itself (Vector's `socket` source in unix_stream mode, Fluent Bit's
// unix socket inputs): those sources are servers, they never connect out.
//
// publish() never blocks on a subscriber: each peer has its own bounded queue,
// writes are non-blocking and happen on the sink's own thread. A peer whose
// queue is full loses the event (counted, per peer and in stats().dropped);
// a peer that accepts nothing for `stall_timeout` while events wait is
// disconnected (counted) so that it cannot hold memory forever.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ipc/unix_socket.h"
#include "sinks/event_sink.h"

namespace diskwatch {

struct SocketSinkOptions {
    std::string listen_path;   // --json-socket (subscribers connect here); may be empty
    std::string connect_path;  // --json-socket-connect (we connect to a listener); may be empty
    mode_t socket_mode = 0600;  // events name processes and paths: root-only unless widened
    std::optional<gid_t> socket_group;
    size_t peer_queue_bytes = 1 << 20;  // per peer, beyond the kernel's socket buffer
    size_t max_subscribers = 64;        // further connections are closed at once (counted)
    std::chrono::milliseconds stall_timeout {30000};
    std::chrono::milliseconds reconnect_interval {1000};  // connect mode
};

// Per peer, for status and tests.
struct SocketPeerStats {
    uint64_t id = 0;  // in connection order, from 1
    bool outbound = false;
    pid_t pid = 0;    // SO_PEERCRED of a subscriber (0 for outbound)
    size_t queued_bytes = 0;
    uint64_t delivered = 0;
    uint64_t lost = 0;
};

struct SocketSinkCounters {
    uint64_t subscribers_accepted = 0;
    uint64_t subscribers_refused = 0;         // over max_subscribers
    uint64_t subscribers_disconnected_slow = 0;
    uint64_t subscribers_closed = 0;          // hung up by the peer or on write error
    uint64_t connect_failures = 0;            // connect mode
};

class SocketSink final : public EventSink {
public:
    static std::unique_ptr<SocketSink> open(const SocketSinkOptions &options, std::string *error);
    ~SocketSink() override;  // stops the thread, closes every peer, removes the socket file
    SocketSink(const SocketSink &) = delete;
    SocketSink &operator=(const SocketSink &) = delete;

    void publish(const Event &event) override;
    void flush(int timeout_ms) override;
    // published: events handed to publish(); delivered / dropped: per peer
    // (an event sent to three subscribers counts three). Events published
    // while nobody is connected are neither: nobody asked for them.
    SinkStats stats() const override;
    std::string name() const override;

    std::vector<SocketPeerStats> peers() const;
    SocketSinkCounters counters() const;

private:
    struct Peer {
        UniqueFd fd;
        uint64_t id = 0;
        bool outbound = false;
        pid_t pid = 0;
        std::deque<std::string> lines;  // each ends with '\n'; the front may be partly sent
        size_t front_sent = 0;
        size_t queued_bytes = 0;        // unsent bytes over all lines
        uint64_t delivered = 0;
        uint64_t lost = 0;
        std::chrono::steady_clock::time_point last_progress;
    };

    explicit SocketSink(const SocketSinkOptions &options);
    void run();    // serve() until stop, across what it throws (vocabulary/internal_errors.h)
    void serve();
    void accept_subscribers();
    void try_connect();
    // Writes what a peer has queued; false when the peer must be closed.
    bool write_pending(Peer &peer);
    void wake() const;

    SocketSinkOptions options_;
    UniqueFd listen_fd_;
    UniqueFd wake_fd_;  // eventfd: publish() -> I/O thread
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Peer>> peers_;
    uint64_t next_peer_id_ = 1;
    bool outbound_connected_ = false;
    std::chrono::steady_clock::time_point next_connect_attempt_;
    SinkStats stats_;
    SocketSinkCounters counters_;
    std::atomic<bool> stopping_ {false};
    std::thread thread_;
};

}  // namespace diskwatch
