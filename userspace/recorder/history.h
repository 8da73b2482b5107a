// The flight record read back (recorder/record_store.h): the windows of a
// time range, each with its three groupings as `top --json` documents and
// its events. The fine tier where it reaches, the coarse tier before that:
// one timeline, at the best resolution kept for each moment.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "recorder/record_store.h"

namespace diskwatch {

struct RecordedWindow {
    RecordTier tier = RecordTier::fine;
    double start = 0, ts = 0;  // unix seconds: the window's first refresh began, its last ended
    double resolution_s = 0;
    nlohmann::json process, cgroup, mount;  // `top --json` documents (docs/top-json.md)
    nlohmann::json events;                  // the event records of the window (docs/events.md)

    // The grouping as a report, as the views take it (ts set). Converted
    // once: a window read for explain has its process and cgroup reports
    // made on the reading's threads.
    const WriteReport &report(GroupBy by) const;
    mutable std::optional<WriteReport> reports[3];
};

struct AgentStarted {
    double ts = 0;
    int pid = 0;
    std::string version;
};

struct History {
    std::vector<RecordedWindow> windows;  // oldest first, none overlapping
    std::vector<AgentStarted> starts;
    std::vector<std::string> warnings;  // torn records, unreadable segments, newer formats
    uint64_t bytes_on_disk = 0;
    std::optional<double> oldest, newest;  // of the whole store, whatever the range
};

// Which windows stand for a moment both tiers hold: the replay wants the
// finest; explain sums, and the coarse tier says the same in a tenth of the
// records (fine windows only after the last coarse one).
enum class HistoryResolution { finest, fewest };

// With `fold`, each window is handed over in time order (its process and
// cgroup reports ready) instead of kept in `windows`: explain reads a whole
// store in bounded memory. Records are decoded on every core.
History load_history(const std::string &dir, double from_s, double to_s,
                     HistoryResolution resolution = HistoryResolution::finest,
                     const std::function<void(RecordedWindow &&)> &fold = {});

// When `text` means, for --replay and --since: "2h ago", "90m", "now",
// "yesterday"-free absolute forms "2026-12-05 14:00[:SS]", "2026-12-05T14:00:00Z",
// "14:00" (today, local time), or unix seconds "@1764950400".
// nullopt with *error otherwise.
std::optional<double> parse_when(std::string_view text, double now_s, std::string *error);

}  // namespace diskwatch
