#include "aggregate/mount_growth.h"

namespace diskwatch {

void MountGrowthTracker::observe(uint32_t dev, double now_s, uint64_t used_bytes, uint64_t available_bytes)
{
    History &history = history_[dev];
    history.observations.push_back({now_s, used_bytes});
    history.available_bytes = available_bytes;
    // Keep one observation at or before the window's start, so the rate
    // always spans the whole window once there is enough history.
    while (history.observations.size() > 2 && now_s - history.observations[1].time_s >= window_s_)
        history.observations.pop_front();
}

std::optional<double> MountGrowthTracker::growth_bps(uint32_t dev) const
{
    auto it = history_.find(dev);
    if (it == history_.end() || it->second.observations.size() < 2)
        return std::nullopt;
    const auto &first = it->second.observations.front();
    const auto &last = it->second.observations.back();
    const double elapsed = last.time_s - first.time_s;
    if (elapsed <= 0)
        return std::nullopt;
    return (static_cast<double>(last.used_bytes) - static_cast<double>(first.used_bytes)) / elapsed;
}

std::optional<double> MountGrowthTracker::eta_full_s(uint32_t dev) const
{
    auto rate = growth_bps(dev);
    if (!rate || *rate <= 0)
        return std::nullopt;
    return static_cast<double>(history_.at(dev).available_bytes) / *rate;
}

}  // namespace diskwatch
