#include "actions/cgroup_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "resolve/kernel_files.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

bool write_control(const std::string &path, const std::string &value, std::string *error)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);  // a control file is never a link
    if (fd < 0) {
        *error = path + ": open: " + errno_text(errno);
        return false;
    }
    const ssize_t n = ::write(fd, value.data(), value.size());
    const int write_errno = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(value.size())) {
        *error = path + ": write \"" + value + "\": " + errno_text(write_errno);
        return false;
    }
    return true;
}

std::string read_control(const std::string &path)
{
    const auto file = read_kernel_file(path);
    return file.text.substr(0, file.text.find('\n'));
}

bool write_whole_file(const std::string &path, const std::string &text, std::string *error)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        *error = path + ": open: " + errno_text(errno);
        return false;
    }
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *error = path + ": write: " + errno_text(errno);
            ::close(fd);
            return false;
        }
        done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) {
        *error = path + ": close: " + errno_text(errno);
        return false;
    }
    return true;
}

}  // namespace diskwatch
