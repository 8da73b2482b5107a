// Unix-domain socket plumbing shared by the event socket sink and the control
// socket: a listening socket that replaces a stale file but never steals a
// live one, and a client connect that says in words why it failed.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace diskwatch {

// An owned file descriptor (closed on destruction).
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept
    {
        if (this != &other)
            reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release()
    {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

struct UnixListenOptions {
    mode_t mode = 0600;                 // of the socket file, set before anyone can connect
    std::optional<gid_t> group;         // chgrp the socket file (group-readable sockets)
    bool create_parent = true;          // mkdir -p the parent directory (0755)
    int backlog = 16;
};

// Binds and listens on `path` (non-blocking, close-on-exec). A socket file
// left by a dead process is replaced; one that still accepts connections is
// an error ("already in use"), as is any path that is not a socket.
UniqueFd listen_unix_stream(const std::string &path, const UnixListenOptions &options, std::string *error);

// Connects to a listening unix stream socket. With nonblocking, the connected
// socket is O_NONBLOCK (unix connects complete at once or fail: EAGAIN when
// the backlog is full is reported as an error).
UniqueFd connect_unix_stream(const std::string &path, bool nonblocking, std::string *error);

// Credentials of the process at the other end (SO_PEERCRED), captured by the
// kernel at connect() time.
struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};
std::optional<PeerCredentials> peer_credentials(int fd);

// Sets O_NONBLOCK; false with errno on failure.
bool set_nonblocking(int fd);

}  // namespace diskwatch
