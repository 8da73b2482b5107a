#include "recorder/replay_feed.h"

#include <poll.h>

#include <algorithm>

#include "views/format.h"

namespace diskwatch {

std::unique_ptr<ReplayFeed> ReplayFeed::open(const std::string &dir, double at_s, std::string *error)
{
    std::unique_ptr<ReplayFeed> feed(new ReplayFeed());
    feed->dir_ = dir;
    feed->history_ = load_history(dir, at_s - kReplayBeforeS, at_s + kReplayAfterS);
    // Before the record, it starts at its first window; after it, at its last.
    const History &found = feed->history_;
    if (found.windows.empty() && found.oldest && found.newest) {
        if (at_s < *found.oldest)
            at_s = *found.oldest;
        else if (at_s > *found.newest)
            at_s = *found.newest;
        feed->history_ = load_history(dir, at_s - kReplayBeforeS, at_s + kReplayAfterS);
    }
    auto &windows = feed->history_.windows;
    if (windows.empty()) {
        *error = "the flight record in " + dir + " has nothing around " + rfc3339_utc(at_s);
        if (feed->history_.oldest && feed->history_.newest)
            *error += ": it holds " + rfc3339_utc(*feed->history_.oldest) + " to " + rfc3339_utc(*feed->history_.newest);
        for (const auto &warning : feed->history_.warnings)
            *error += "; " + warning;
        return nullptr;
    }
    // The first window that ends at or after `at`, else the last one.
    const auto it = std::lower_bound(windows.begin(), windows.end(), at_s,
                                     [](const RecordedWindow &w, double t) { return w.ts < t; });
    feed->position_ = it == windows.end() ? windows.size() - 1 : static_cast<size_t>(it - windows.begin());
    return feed;
}

void ReplayFeed::wait(int timeout_ms)
{
    if (timeout_ms > 0)
        ::poll(nullptr, 0, timeout_ms);  // nothing to drain: a recording does not change
}

std::optional<WriteReport> ReplayFeed::refresh(const ReportOptions &options, std::string *)
{
    return history_.windows[position_].report(options.by);
}

std::string ReplayFeed::describe() const
{
    const RecordedWindow &window = history_.windows[position_];
    return "replay " + rfc3339_utc(window.ts) + " (" + std::to_string(position_ + 1) + "/" +
           std::to_string(history_.windows.size()) + ", " + human_duration(window.resolution_s) + " windows)";
}

std::optional<std::string> ReplayFeed::act(const OperatorAction &, std::string *error)
{
    *error = "a replay shows the past: nothing to act on";
    return std::nullopt;
}

bool ReplayFeed::step(int windows)
{
    const long target = static_cast<long>(position_) + windows;
    const long last = static_cast<long>(history_.windows.size()) - 1;
    const size_t clamped = static_cast<size_t>(std::clamp(target, 0L, last));
    const bool moved = clamped != position_;
    position_ = clamped;
    return moved;
}

}  // namespace diskwatch
