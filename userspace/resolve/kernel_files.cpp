#include "resolve/kernel_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string_view>

#include "resolve/kernel_files_fault.h"
#include "resolve/numbers.h"

namespace diskwatch {

namespace {

std::atomic<KernelFileFault> injected_fault {nullptr};

// read(2), or the fault a test injects in its place.
ssize_t read_some(int fd, const std::string &path, char *buffer, size_t size)
{
    if (const KernelFileFault fault = injected_fault.load(std::memory_order_relaxed)) {
        if (const int error = fault(path.c_str()); error != 0) {
            errno = error;
            return -1;
        }
    }
    return ::read(fd, buffer, size);
}

}  // namespace

void set_kernel_file_fault(KernelFileFault fault)
{
    injected_fault.store(fault, std::memory_order_relaxed);
}

namespace {

// Reads what `fd` holds, at most max_bytes (more is EFBIG), and closes it.
KernelFile read_all(int fd, const std::string &path, size_t max_bytes)
{
    KernelFile result;
    char buffer[4096];
    for (;;) {
        const ssize_t n = read_some(fd, path, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            result.error = errno;
            break;
        }
        if (n == 0)
            break;
        if (result.text.size() + static_cast<size_t>(n) > max_bytes) {
            result.error = EFBIG;
            break;
        }
        result.text.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd);
    if (result.error != 0)
        result.text.clear();
    return result;
}

int open_retrying(const char *path, int flags)
{
    int fd = -1;
    do
        fd = ::open(path, flags);
    while (fd < 0 && errno == EINTR);
    return fd;
}

}  // namespace

KernelFile read_kernel_file(const std::string &path, size_t max_bytes)
{
    const int fd = open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        KernelFile result;
        result.error = errno;
        return result;
    }
    return read_all(fd, path, max_bytes);
}

namespace {

// A regular file of at most max_bytes, opened with `extra_flags` besides
// O_NONBLOCK: a FIFO in the file's place opens at once (and is refused below)
// instead of waiting for a writer forever.
KernelFile read_regular_file(const std::string &path, size_t max_bytes, int extra_flags)
{
    KernelFile result;
    const int fd = open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | extra_flags);
    if (fd < 0) {
        result.error = errno;
        return result;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<unsigned long long>(st.st_size) > max_bytes) {
        result.error = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        ::close(fd);
        return result;
    }
    return read_all(fd, path, max_bytes);
}

}  // namespace

KernelFile read_state_file(const std::string &path, size_t max_bytes)
{
    // O_NOFOLLOW: not through a symlink as its last component.
    return read_regular_file(path, max_bytes, O_NOFOLLOW);
}

KernelFile read_config_file(const std::string &path, size_t max_bytes)
{
    return read_regular_file(path, max_bytes, 0);
}

std::optional<long long> read_integer_file(const std::string &path)
{
    const auto file = read_kernel_file(path, 64);
    std::string_view text = file.text;
    if (!text.empty() && text.back() == '\n')
        text.remove_suffix(1);
    return file.ok() ? parse_integer<long long>(text) : std::nullopt;
}

}  // namespace diskwatch
