#include "resolve/kernel_files.h"

#include <fcntl.h>
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

KernelFile read_kernel_file(const std::string &path, size_t max_bytes)
{
    KernelFile result;
    int fd = -1;
    do
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        result.error = errno;
        return result;
    }
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

std::optional<long long> read_integer_file(const std::string &path)
{
    const auto file = read_kernel_file(path, 64);
    std::string_view text = file.text;
    if (!text.empty() && text.back() == '\n')
        text.remove_suffix(1);
    return file.ok() ? parse_integer<long long>(text) : std::nullopt;
}

}  // namespace diskwatch
