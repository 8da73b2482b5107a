#include "actions/cgroup_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace diskwatch {

namespace {

constexpr size_t kMaxFileBytes = 16u << 20;

}  // namespace

bool write_control(const std::string &path, const std::string &value, std::string *error)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        *error = path + ": open: " + std::strerror(errno);
        return false;
    }
    const ssize_t n = ::write(fd, value.data(), value.size());
    const int write_errno = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(value.size())) {
        *error = path + ": write \"" + value + "\": " + std::strerror(write_errno);
        return false;
    }
    return true;
}

std::optional<std::string> read_whole_file(const std::string &path, int *read_errno)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *read_errno = errno;
        return std::nullopt;
    }
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *read_errno = errno;
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0)
            break;
        text.append(buffer, static_cast<size_t>(n));
        if (text.size() > kMaxFileBytes) {
            *read_errno = EFBIG;
            ::close(fd);
            return std::nullopt;
        }
    }
    ::close(fd);
    return text;
}

std::string read_control(const std::string &path)
{
    int read_errno = 0;
    auto text = read_whole_file(path, &read_errno);
    if (!text)
        return {};
    return text->substr(0, text->find('\n'));
}

bool write_whole_file(const std::string &path, const std::string &text, std::string *error)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        *error = path + ": open: " + std::strerror(errno);
        return false;
    }
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *error = path + ": write: " + std::strerror(errno);
            ::close(fd);
            return false;
        }
        done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) {
        *error = path + ": close: " + std::strerror(errno);
        return false;
    }
    return true;
}

}  // namespace diskwatch
