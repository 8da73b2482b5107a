#include "control/control_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "ipc/unix_socket.h"
#include "vocabulary/errno_text.h"

namespace diskwatch::control {

std::optional<nlohmann::json> send_request(const std::string &socket_path, const nlohmann::json &request,
                                           std::chrono::milliseconds timeout, std::string *error)
{
    auto fail = [&](const std::string &why) -> std::optional<nlohmann::json> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    std::string connect_error;
    UniqueFd fd = connect_unix_stream(socket_path, true, &connect_error);
    if (!fd) {
        if (connect_error.find("no such socket") != std::string::npos ||
            connect_error.find("connection refused") != std::string::npos)
            return fail("no agent running (" + connect_error + ")");
        return fail(connect_error);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto wait_for = [&](short events) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd pfd {fd.get(), events, 0};
        return ::poll(&pfd, 1, static_cast<int>(left.count())) > 0;
    };

    const std::string line = request.dump() + "\n";
    size_t sent = 0;
    while (sent < line.size()) {
        ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n >= 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !wait_for(POLLOUT))
            return fail("sending to " + socket_path + ": " +
                        (errno == EAGAIN ? std::string("timed out") : errno_text(errno)));
    }

    std::string response;
    for (;;) {
        size_t newline = response.find('\n');
        if (newline != std::string::npos) {
            auto parsed = nlohmann::json::parse(response.substr(0, newline), nullptr, false);
            if (parsed.is_discarded() || !parsed.is_object())
                return fail("malformed response from " + socket_path);
            return parsed;
        }
        if (response.size() > size_t{64} * 1024 * 1024)
            return fail("response from " + socket_path + " is too large");
        if (!wait_for(POLLIN))
            return fail("timed out waiting for the agent's answer on " + socket_path);
        char buffer[65536];
        ssize_t got = ::recv(fd.get(), buffer, sizeof(buffer), 0);
        if (got == 0)
            return fail("the agent closed the connection without answering");
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return fail(std::string("reading from ") + socket_path + ": " + errno_text(errno));
        }
        response.append(buffer, static_cast<size_t>(got));
    }
}

}  // namespace diskwatch::control
