// The agent's control socket (/run/ebpf-diskwatch/control.sock): `status`,
// `release`, `snapshot` requests from the CLI, answered by handlers the agent
// registers. Two locks on the door: the socket file is root-only (0600, or
// 0660 with a configured group), and every connection's SO_PEERCRED is
// checked: root, the agent's own uid, or a member of the configured group.
// Handlers run on the server's thread, one request at a time.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "control/control_protocol.h"
#include "ipc/unix_socket.h"

namespace diskwatch::control {

struct ControlServerOptions {
    std::string path = kDefaultSocketPath;
    std::optional<gid_t> allowed_group;  // its members may connect (socket file 0660 root:group)
    std::optional<mode_t> socket_mode;   // default 0600, or 0660 with allowed_group
    size_t max_clients = 16;
};

struct ControlRequest {
    nlohmann::json body;
    PeerCredentials peer;
};

// A handler's answer: an object whose fields join {"ok": true}. Throwing
// ControlError answers {"ok": false, "error": what()}.
using ControlHandler = std::function<nlohmann::json(const ControlRequest &)>;

class ControlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ControlCounters {
    uint64_t connections = 0;
    uint64_t refused = 0;    // peer credentials not allowed
    uint64_t requests = 0;
    uint64_t bad_requests = 0;
};

// Whether a peer may use the socket (exposed for tests and `status`).
bool peer_allowed(const PeerCredentials &peer, std::optional<gid_t> allowed_group, std::string *why);

class ControlServer {
public:
    static std::unique_ptr<ControlServer> start(const ControlServerOptions &options, std::string *error);
    ~ControlServer();  // stops the thread, closes clients, removes the socket file
    ControlServer(const ControlServer &) = delete;
    ControlServer &operator=(const ControlServer &) = delete;

    void handle(const std::string &cmd, ControlHandler handler);
    const std::string &path() const { return options_.path; }
    ControlCounters counters() const;

private:
    struct Client {
        UniqueFd fd;
        PeerCredentials peer;
        std::string in;
        std::string out;
        bool closing = false;  // close once `out` is written
    };

    explicit ControlServer(const ControlServerOptions &options) : options_(options) {}
    void run();    // serve() until stop, across what it throws (vocabulary/internal_errors.h)
    void serve();
    void accept_clients();
    std::string answer(const std::string &line, const PeerCredentials &peer);

    ControlServerOptions options_;
    UniqueFd listen_fd_;
    UniqueFd wake_fd_;
    mutable std::mutex mutex_;
    std::map<std::string, ControlHandler> handlers_;
    ControlCounters counters_;
    std::vector<std::unique_ptr<Client>> clients_;  // the server thread's only
    std::atomic<bool> stopping_ {false};
    std::thread thread_;
};

}  // namespace diskwatch::control
