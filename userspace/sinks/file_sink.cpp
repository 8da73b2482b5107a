#include "sinks/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "sinks/write_all.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

int open_for_append(const std::string &path)
{
    return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

off_t size_of(int fd)
{
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? st.st_size : 0;
}

}  // namespace

std::unique_ptr<FileSink> FileSink::open(const FileSinkOptions &options, std::string *error)
{
    const int fd = open_for_append(options.path);
    if (fd < 0) {
        *error = options.path + ": open: " + errno_text(errno);
        return nullptr;
    }
    return std::unique_ptr<FileSink>(new FileSink(options, fd, size_of(fd)));
}

FileSink::FileSink(FileSinkOptions options, int fd, off_t size) : options_(std::move(options)), fd_(fd), size_(size)
{
    start();
}

FileSink::~FileSink()
{
    stop();
    if (fd_ >= 0)
        ::close(fd_);
}

void FileSink::reopen()
{
    const int fd = open_for_append(options_.path);
    if (fd < 0) {
        spdlog::warn("--json-out {}: reopen: {}; still writing the old file", options_.path, errno_text(errno));
        return;
    }
    std::lock_guard lock(fd_mutex_);
    ::close(fd_);
    fd_ = fd;
    size_ = size_of(fd);
}

void FileSink::rotate_locked()
{
    // Oldest first, so that no rename overwrites a file still to be moved.
    const std::string &path = options_.path;
    if (options_.keep == 0) {
        ::unlink(path.c_str());
    } else {
        ::unlink((path + "." + std::to_string(options_.keep)).c_str());
        for (unsigned i = options_.keep - 1; i >= 1; --i)
            ::rename((path + "." + std::to_string(i)).c_str(), (path + "." + std::to_string(i + 1)).c_str());
        ::rename(path.c_str(), (path + ".1").c_str());
    }
    const int fd = open_for_append(path);
    if (fd < 0) {
        // Keep the old descriptor (its file is now PATH.1, or unlinked): the
        // events still land somewhere, and the next rotation tries again.
        spdlog::warn("--json-out {}: open after rotation: {}", path, errno_text(errno));
        return;
    }
    ::close(fd_);
    fd_ = fd;
    size_ = 0;
}

bool FileSink::write_line(const std::string &line, std::string *error)
{
    std::lock_guard lock(fd_mutex_);
    const auto line_size = static_cast<off_t>(line.size());
    size_ = size_of(fd_);  // someone may have truncated it (logrotate's copytruncate)
    if (options_.max_size_bytes > 0 && size_ > 0 &&
        static_cast<uint64_t>(size_ + line_size) > options_.max_size_bytes)
        rotate_locked();
    const off_t before = size_;
    if (!write_all(fd_, line, error)) {
        // A line cut short (ENOSPC half-way) would glue onto the next one:
        // cut the file back to the last whole line.
        if (::ftruncate(fd_, before) != 0)
            spdlog::debug("--json-out {}: ftruncate: {}", options_.path, errno_text(errno));
        *error = options_.path + ": " + *error;
        if (!failing_)
            spdlog::error("--json-out {}; events are dropped (counted in status and metrics) until it can "
                          "write again",
                          *error);
        failing_ = true;
        ++failed_lines_;
        return false;
    }
    size_ = before + line_size;
    if (failing_) {
        spdlog::warn("--json-out {}: writing again, {} events were dropped", options_.path, failed_lines_);
        failing_ = false;
        failed_lines_ = 0;
    }
    return true;
}

}  // namespace diskwatch
