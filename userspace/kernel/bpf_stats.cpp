#include "kernel/bpf_stats.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>

#include <bpf/bpf.h>

#include "resolve/kernel_files.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

constexpr const char *kSysctlPath = "/proc/sys/kernel/bpf_stats_enabled";

bool write_sysctl(int value)
{
    std::ofstream out(kSysctlPath);
    out << value << "\n";
    out.flush();
    return static_cast<bool>(out);
}

}  // namespace

int read_bpf_stats_sysctl()
{
    const auto value = read_integer_file(kSysctlPath);
    return value && *value >= 0 && *value <= INT_MAX ? static_cast<int>(*value) : -1;
}

std::optional<BpfStatsWindow> BpfStatsWindow::open(std::string *error)
{
    BpfStatsWindow window;
    window.previous_ = read_bpf_stats_sysctl();
    window.stats_fd_ = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (window.stats_fd_ >= 0)
        return window;
    const int enable_errno = errno;
    if (window.previous_ == 1)
        return window;  // already on: nothing to turn on or restore
    if (window.previous_ == 0 && write_sysctl(1)) {
        window.restore_sysctl_ = true;
        return window;
    }
    if (error)
        *error = std::string("cannot turn on bpf_stats: bpf(BPF_ENABLE_STATS): ") + errno_text(enable_errno) +
                 ", and " + kSysctlPath + " is not writable";
    return std::nullopt;
}

BpfStatsWindow::BpfStatsWindow(BpfStatsWindow &&other) noexcept
    : stats_fd_(other.stats_fd_), previous_(other.previous_), restore_sysctl_(other.restore_sysctl_)
{
    other.stats_fd_ = -1;
    other.restore_sysctl_ = false;
}

BpfStatsWindow::~BpfStatsWindow()
{
    if (stats_fd_ >= 0)
        ::close(stats_fd_);
    if (restore_sysctl_)
        write_sysctl(previous_);
}

}  // namespace diskwatch
