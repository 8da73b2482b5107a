// How fast each mount is filling, and when it will be full.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

namespace diskwatch {

// Net growth of a filesystem from its used bytes (statvfs) over a sliding
// window: what actually fills the disk, after deletes, truncates and
// overwrites, whoever did them.
class MountGrowthTracker {
public:
    explicit MountGrowthTracker(double window_s = 30.0) : window_s_(window_s) {}

    void observe(uint32_t dev, double now_s, uint64_t used_bytes, uint64_t available_bytes);
    // Bytes per second the used space grew over the window (negative when it shrank).
    std::optional<double> growth_bps(uint32_t dev) const;
    // Seconds until the available space is gone at that rate; nullopt when
    // the mount is not filling (no rate yet, or flat or shrinking).
    std::optional<double> eta_full_s(uint32_t dev) const;

private:
    struct Observation {
        double time_s;
        uint64_t used_bytes;
    };
    struct History {
        std::deque<Observation> observations;
        uint64_t available_bytes = 0;
    };
    std::unordered_map<uint32_t, History> history_;
    double window_s_;
};

}  // namespace diskwatch
