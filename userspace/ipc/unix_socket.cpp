#include "ipc/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "vocabulary/errno_text.h"

namespace diskwatch {

void UniqueFd::reset(int fd)
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
}

namespace {

std::string failed(const std::string &what, int err)
{
    return what + ": " + errno_text(err);
}

bool fill_address(const std::string &path, sockaddr_un *address, std::string *error)
{
    std::memset(address, 0, sizeof(*address));
    address->sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(address->sun_path)) {
        if (error)
            *error = "socket path '" + path + "' is empty or longer than " +
                     std::to_string(sizeof(address->sun_path) - 1) + " bytes";
        return false;
    }
    std::memcpy(address->sun_path, path.c_str(), path.size() + 1);
    return true;
}

// True when something accepts connections on `path` right now.
bool someone_listens(const sockaddr_un &address)
{
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe)
        return false;
    return ::connect(probe.get(), reinterpret_cast<const sockaddr *>(&address), sizeof(address)) == 0;
}

}  // namespace

bool set_nonblocking(int fd)
{
    int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

UniqueFd listen_unix_stream(const std::string &path, const UnixListenOptions &options, std::string *error)
{
    sockaddr_un address;
    if (!fill_address(path, &address, error))
        return UniqueFd();

    if (options.create_parent) {
        std::error_code ec;
        auto parent = std::filesystem::path(path).parent_path();
        if (!parent.empty())
            std::filesystem::create_directories(parent, ec);
        if (ec) {
            if (error)
                *error = "mkdir " + parent.string() + ": " + ec.message();
            return UniqueFd();
        }
    }

    struct stat existing;
    if (::lstat(path.c_str(), &existing) == 0) {
        if (!S_ISSOCK(existing.st_mode)) {
            if (error)
                *error = path + " exists and is not a socket; refusing to replace it";
            return UniqueFd();
        }
        if (someone_listens(address)) {
            if (error)
                *error = path + " is already in use (another ebpf-diskwatch is listening there)";
            return UniqueFd();
        }
        ::unlink(path.c_str());  // stale: its owner is gone
    }

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        if (error)
            *error = failed("socket(AF_UNIX)", errno);
        return UniqueFd();
    }
    // The file is created by bind() with the umask applied; fchmod on a
    // socket fd does not reach the file, so narrow the umask around bind so
    // that no moment exists when the file is more open than asked.
    mode_t old_umask = ::umask(static_cast<mode_t>(~options.mode & 0777));
    int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr *>(&address), sizeof(address));
    int bind_errno = errno;
    ::umask(old_umask);
    if (rc != 0) {
        if (error)
            *error = failed("bind " + path, bind_errno);
        return UniqueFd();
    }
    if (::chmod(path.c_str(), options.mode) != 0 ||
        (options.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *options.group) != 0)) {
        if (error)
            *error = failed("chmod/chown " + path, errno);
        ::unlink(path.c_str());
        return UniqueFd();
    }
    if (::listen(fd.get(), options.backlog) != 0) {
        if (error)
            *error = failed("listen " + path, errno);
        ::unlink(path.c_str());
        return UniqueFd();
    }
    return fd;
}

UniqueFd connect_unix_stream(const std::string &path, bool nonblocking, std::string *error)
{
    sockaddr_un address;
    if (!fill_address(path, &address, error))
        return UniqueFd();
    int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    UniqueFd fd(::socket(AF_UNIX, type, 0));
    if (!fd) {
        if (error)
            *error = failed("socket(AF_UNIX)", errno);
        return UniqueFd();
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr *>(&address), sizeof(address)) != 0) {
        int err = errno;
        if (error) {
            if (err == ENOENT)
                *error = "connect " + path + ": no such socket (is the listener running?)";
            else if (err == ECONNREFUSED)
                *error = "connect " + path + ": connection refused (stale socket, nobody listening)";
            else if (err == EACCES)
                *error = "connect " + path + ": permission denied (run as root or a permitted group)";
            else
                *error = failed("connect " + path, err);
        }
        return UniqueFd();
    }
    return fd;
}

std::optional<PeerCredentials> peer_credentials(int fd)
{
    ucred credentials {};
    socklen_t length = sizeof(credentials);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0)
        return std::nullopt;
    return PeerCredentials {credentials.pid, credentials.uid, credentials.gid};
}

}  // namespace diskwatch
