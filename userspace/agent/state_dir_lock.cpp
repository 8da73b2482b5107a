#include "agent/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "resolve/kernel_files.h"

namespace diskwatch {

std::unique_ptr<StateDirLock> StateDirLock::acquire(const std::string &state_dir, std::string *error)
{
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    const std::string path = state_dir + "/agent.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        *error = path + ": " + std::strerror(errno);
        return nullptr;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int lock_errno = errno;
        ::close(fd);
        if (lock_errno != EWOULDBLOCK) {
            *error = path + ": flock: " + std::strerror(lock_errno);
            return nullptr;
        }
        const auto holder = read_kernel_file(path);
        std::string pid = holder.text.substr(0, holder.text.find('\n'));
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos)
            pid = "unknown";
        *error = "the state dir " + state_dir + " is used by another agent (pid " + pid +
                 ", holding " + path + "); stop it first, or give this one its own --state-dir";
        return nullptr;
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        // The lock holds without the pid in it; only the message of a second agent is poorer.
    }
    return std::unique_ptr<StateDirLock>(new StateDirLock(fd));
}

StateDirLock::~StateDirLock()
{
    if (fd_ >= 0)
        ::close(fd_);
}

}  // namespace diskwatch
