#include "actions/safety.h"

#include <chrono>
#include <cmath>

#include "events/events.h"

namespace diskwatch {

std::string Snoozes::key_of(const Subject &subject)
{
    if (subject.scope == RuleScope::cgroup)
        return subject.key();
    // The start time to the clock tick (as same_start compares): a reused pid is another process.
    return subject.key() + "@" + std::to_string(std::llround(subject.start_boot_s * 100));
}

void Snoozes::add(const Subject &subject, double now_s, double for_s)
{
    const auto wall = std::chrono::system_clock::now() +
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(for_s));
    snoozes_[key_of(subject)] = {now_s + for_s, rfc3339_utc(wall)};
    prune(now_s);
    while (snoozes_.size() > kMaxSnoozes) {
        auto soonest = snoozes_.begin();
        for (auto it = snoozes_.begin(); it != snoozes_.end(); ++it)
            if (it->second.until_s < soonest->second.until_s)
                soonest = it;
        snoozes_.erase(soonest);
    }
}

std::optional<Snoozes::Snooze> Snoozes::active(const Subject &subject, double now_s)
{
    auto it = snoozes_.find(key_of(subject));
    if (it == snoozes_.end())
        return std::nullopt;
    if (now_s >= it->second.until_s) {
        snoozes_.erase(it);
        return std::nullopt;
    }
    return it->second;
}

void Snoozes::prune(double now_s)
{
    for (auto it = snoozes_.begin(); it != snoozes_.end();)
        it = now_s >= it->second.until_s ? snoozes_.erase(it) : std::next(it);
}

}  // namespace diskwatch
