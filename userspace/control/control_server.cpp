#include "control/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "vocabulary/internal_errors.h"
#include "resolve/kernel_files.h"
#include "resolve/numbers.h"
#include "resolve/processes.h"
#include "vocabulary/errno_text.h"

namespace diskwatch::control {

namespace {

// Supplementary groups of a process (SO_PEERCRED carries only the primary
// gid). Read from /proc/PID/status: the peer is connected, so its pid is live.
bool process_in_group(pid_t pid, gid_t group)
{
    // Unreadable (the peer went): not known to be in the group.
    const auto status = read_kernel_file("/proc/" + std::to_string(pid) + "/status");
    const auto groups = status.ok() ? status_value(status.text, "Groups") : std::nullopt;
    if (!groups)
        return false;
    size_t pos = 0;
    while (pos < groups->size()) {
        const size_t end = std::min(groups->find(' ', pos), groups->size());
        if (parse_integer<gid_t>(groups->substr(pos, end - pos)) == group)
            return true;
        pos = end + 1;
    }
    return false;
}

}  // namespace

bool peer_allowed(const PeerCredentials &peer, std::optional<gid_t> allowed_group, std::string *why)
{
    if (peer.uid == 0 || peer.uid == ::geteuid())
        return true;
    if (allowed_group && (peer.gid == *allowed_group || process_in_group(peer.pid, *allowed_group)))
        return true;
    if (why) {
        *why = "permission denied: uid " + std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) +
               ") is not root";
        if (allowed_group)
            *why += " nor in group " + std::to_string(*allowed_group);
    }
    return false;
}

std::unique_ptr<ControlServer> ControlServer::start(const ControlServerOptions &options, std::string *error)
{
    std::unique_ptr<ControlServer> server(new ControlServer(options));
    server->wake_fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!server->wake_fd_) {
        if (error)
            *error = std::string("eventfd: ") + errno_text(errno);
        return nullptr;
    }
    UnixListenOptions listen_options;
    listen_options.mode = options.socket_mode.value_or(options.allowed_group ? 0660 : 0600);
    listen_options.group = options.allowed_group;
    server->listen_fd_ = listen_unix_stream(options.path, listen_options, error);
    if (!server->listen_fd_)
        return nullptr;
    server->thread_ = std::thread([raw = server.get()] { raw->run(); });
    return server;
}

ControlServer::~ControlServer()
{
    stopping_ = true;
    uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd_.get(), &one, sizeof(one));
    if (thread_.joinable())
        thread_.join();
    if (listen_fd_)
        ::unlink(options_.path.c_str());
}

void ControlServer::handle(const std::string &cmd, ControlHandler handler)
{
    std::lock_guard lock(mutex_);
    handlers_[cmd] = std::move(handler);
}

ControlCounters ControlServer::counters() const
{
    std::lock_guard lock(mutex_);
    return counters_;
}

std::string ControlServer::answer(const std::string &line, const PeerCredentials &peer)
{
    nlohmann::json response;
    nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
    std::string why;
    ControlHandler handler;
    {
        std::lock_guard lock(mutex_);
        ++counters_.requests;
        if (request.is_discarded()) {
            why = "malformed JSON request";
        } else if (validate_request(request, &why)) {
            auto it = handlers_.find(request["cmd"].get<std::string>());
            if (it != handlers_.end()) {
                handler = it->second;
            } else {
                why = "unknown command '" + request["cmd"].get<std::string>() + "' (known:";
                for (const auto &[name, unused] : handlers_)
                    why += " " + name;
                why += ")";
            }
        }
        if (!handler)
            ++counters_.bad_requests;
    }
    if (!handler)
        return error_response(why).dump() + "\n";
    try {
        nlohmann::json result = handler(ControlRequest {request, peer});
        response = {{"ok", true}};
        if (result.is_object())
            response.update(result);
        else if (!result.is_null())
            response["result"] = result;
    } catch (const std::exception &e) {
        response = error_response(e.what());
    }
    // Names in answers (comm, cgroup, mount) are bytes any user chose: ASCII
    // out, and bytes that are not UTF-8 replaced rather than throwing (a
    // snapshot's rows carry the exact bytes in <key>_b64, docs/top-json.md).
    return response.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

void ControlServer::accept_clients()
{
    for (;;) {
        UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd)
            return;
        auto credentials = peer_credentials(fd.get());
        std::string why = "cannot read the peer's credentials (SO_PEERCRED)";
        std::lock_guard lock(mutex_);
        ++counters_.connections;
        if (!credentials || !peer_allowed(*credentials, options_.allowed_group, &why)) {
            ++counters_.refused;
            const std::string refusal = error_response(why).dump() + "\n";
            // A fresh socket's buffer takes this small line at once.
            [[maybe_unused]] auto sent = ::send(fd.get(), refusal.data(), refusal.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            continue;
        }
        if (clients_.size() >= options_.max_clients) {
            const std::string busy = error_response("too many control connections").dump() + "\n";
            [[maybe_unused]] auto sent = ::send(fd.get(), busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            continue;
        }
        auto client = std::make_unique<Client>();
        client->fd = std::move(fd);
        client->peer = *credentials;
        clients_.push_back(std::move(client));
    }
}

void ControlServer::run()
{
    while (!stopping_ && !catch_at_boundary("control socket", [this] { serve(); }))
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void ControlServer::serve()
{
    std::vector<pollfd> fds;
    while (!stopping_) {
        fds.clear();
        fds.push_back({wake_fd_.get(), POLLIN, 0});
        fds.push_back({listen_fd_.get(), POLLIN, 0});
        for (const auto &client : clients_)
            fds.push_back({client->fd.get(), static_cast<short>(client->out.empty() ? POLLIN : (POLLIN | POLLOUT)), 0});
        if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR)
            continue;
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            [[maybe_unused]] auto drained = ::read(wake_fd_.get(), &count, sizeof(count));
        }
        if (stopping_)
            break;
        if (fds[1].revents & POLLIN)
            accept_clients();

        for (size_t i = 2; i < fds.size(); ++i) {
            Client &client = *clients_[i - 2];
            if (fds[i].revents & POLLIN) {
                char buffer[4096];
                ssize_t got = ::recv(client.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
                if (got == 0) {
                    client.closing = true;
                } else if (got > 0) {
                    client.in.append(buffer, static_cast<size_t>(got));
                    size_t newline;
                    while ((newline = client.in.find('\n')) != std::string::npos) {
                        std::string line = client.in.substr(0, newline);
                        client.in.erase(0, newline + 1);
                        if (!line.empty())
                            client.out += answer(line, client.peer);
                    }
                    if (client.in.size() > kMaxLineBytes) {
                        client.out += error_response("request longer than " + std::to_string(kMaxLineBytes) +
                                                     " bytes").dump() + "\n";
                        client.closing = true;
                        client.in.clear();
                    }
                } else if (errno != EAGAIN && errno != EINTR) {
                    client.closing = true;
                    client.out.clear();
                }
            } else if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                client.closing = true;
                client.out.clear();
            }
            while (!client.out.empty()) {
                ssize_t sent = ::send(client.fd.get(), client.out.data(), client.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                if (sent < 0) {
                    if (errno != EAGAIN && errno != EINTR) {
                        client.out.clear();
                        client.closing = true;
                    }
                    break;
                }
                client.out.erase(0, static_cast<size_t>(sent));
            }
        }
        clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                      [](const auto &client) { return client->closing && client->out.empty(); }),
                       clients_.end());
    }
}

}  // namespace diskwatch::control
