// Kernel-side run time of BPF programs (run_time_ns / run_cnt in
// bpf_prog_info) is only counted while kernel.bpf_stats_enabled is on, because
// the two clock reads per invocation cost something on every hooked syscall.
// This turns it on for as long as the object lives, and back off after.
#pragma once

#include <optional>
#include <string>

namespace diskwatch {

class BpfStatsWindow {
public:
    // Prefers BPF_ENABLE_STATS (Linux 5.8+): the statistics stay on while its
    // fd is open, so they go back off even if we are killed. Older kernels:
    // writes the sysctl and restores the previous value on destruction.
    // nullopt with *error set when neither works.
    static std::optional<BpfStatsWindow> open(std::string *error);
    BpfStatsWindow(BpfStatsWindow &&other) noexcept;
    BpfStatsWindow &operator=(BpfStatsWindow &&) = delete;
    ~BpfStatsWindow();

    // How the statistics were turned on: "BPF_ENABLE_STATS", "sysctl", or
    // "already on" (the sysctl was 1 before; left as it was).
    const char *mechanism() const
    {
        return stats_fd_ >= 0 ? "BPF_ENABLE_STATS" : restore_sysctl_ ? "sysctl" : "already on";
    }
    // kernel.bpf_stats_enabled as it was before this window (0 or 1).
    int previous_sysctl() const { return previous_; }

private:
    BpfStatsWindow() = default;
    int stats_fd_ = -1;
    int previous_ = 0;
    bool restore_sysctl_ = false;
};

// kernel.bpf_stats_enabled now (0 or 1), or -1 when it cannot be read.
int read_bpf_stats_sysctl();

}  // namespace diskwatch
