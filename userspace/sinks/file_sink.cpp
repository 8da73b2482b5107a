#include "sinks/file_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "sinks/write_all.h"

namespace diskwatch {

namespace {
int open_for_append(const std::string &path)
{
    return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}
}  // namespace

std::unique_ptr<FileSink> FileSink::open(const std::string &path, std::string *error)
{
    const int fd = open_for_append(path);
    if (fd < 0) {
        *error = path + ": open: " + std::strerror(errno);
        return nullptr;
    }
    return std::unique_ptr<FileSink>(new FileSink(path, fd));
}

FileSink::FileSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) { start(); }

FileSink::~FileSink()
{
    stop();
    if (fd_ >= 0)
        ::close(fd_);
}

void FileSink::reopen()
{
    const int fd = open_for_append(path_);
    if (fd < 0)
        return;  // keep writing the old one; the next write error is counted
    std::lock_guard lock(fd_mutex_);
    ::close(fd_);
    fd_ = fd;
}

bool FileSink::write_line(const std::string &line, std::string *error)
{
    std::lock_guard lock(fd_mutex_);
    if (!write_all(fd_, line, error)) {
        *error = path_ + ": " + *error;
        return false;
    }
    return true;
}

}  // namespace diskwatch
