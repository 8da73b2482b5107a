#include "agent/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "resolve/kernel_files.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

std::unique_ptr<StateDirLock> StateDirLock::acquire(const std::string &state_dir, std::string *error)
{
    if (state_dir.empty() || state_dir[0] != '/') {
        *error = "--state-dir must be an absolute path, got \"" + state_dir + "\"";
        return nullptr;
    }
    std::error_code ec;
    // Created here: root's alone whatever the umask (a umask of 0 would
    // otherwise make the check below refuse our own directory).
    if (std::filesystem::create_directories(state_dir, ec))
        ::chmod(state_dir.c_str(), 0755);
    // What the state dir holds decides what root signals, thaws and writes:
    // it must be root's alone, as the policy file must (security.md row 31).
    struct stat dir {};
    if (::lstat(state_dir.c_str(), &dir) != 0) {
        *error = state_dir + ": " + errno_text(errno);
        return nullptr;
    }
    if (!S_ISDIR(dir.st_mode) || dir.st_uid != ::geteuid() || (dir.st_mode & (S_IWGRP | S_IWOTH))) {
        *error = "refused --state-dir " + state_dir +
                 ": it must be a directory (not a symlink) owned by the agent's user and writable by no one else";
        return nullptr;
    }
    const std::string path = state_dir + "/agent.lock";
    // No symlink followed, no FIFO to block on, nothing but a regular file.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) {
        *error = path + ": " + errno_text(errno);
        return nullptr;
    }
    struct stat file {};
    if (::fstat(fd, &file) != 0 || !S_ISREG(file.st_mode)) {
        ::close(fd);
        *error = path + ": refused: not a regular file";
        return nullptr;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int lock_errno = errno;
        ::close(fd);
        if (lock_errno != EWOULDBLOCK) {
            *error = path + ": flock: " + errno_text(lock_errno);
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
