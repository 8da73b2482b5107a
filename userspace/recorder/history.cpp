#include "recorder/history.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "recorder/flight_recorder.h"
#include "rules/units.h"
#include "views/json_report.h"

namespace diskwatch {

WriteReport RecordedWindow::report(GroupBy by) const
{
    const nlohmann::json &document = by == GroupBy::process ? process : by == GroupBy::cgroup ? cgroup : mount;
    WriteReport report = report_from_json(document);
    report.ts = ts;
    report.by = by;
    return report;
}

History load_history(const std::string &dir, double from_s, double to_s)
{
    History history;
    const auto from_ms = static_cast<int64_t>(std::floor(from_s * 1000));
    const auto to_ms = static_cast<int64_t>(std::ceil(to_s * 1000));
    StoreReading reading = read_store(dir, from_ms, to_ms);
    history.warnings = std::move(reading.warnings);
    history.bytes_on_disk = reading.bytes_on_disk;
    if (reading.oldest_ms)
        history.oldest = static_cast<double>(*reading.oldest_ms) / 1000;
    if (reading.newest_ms)
        history.newest = static_cast<double>(*reading.newest_ms) / 1000;
    std::vector<RecordedWindow> fine, coarse;
    bool newer_format = false;
    for (const auto &record : reading.records) {
        nlohmann::json body;
        try {
            body = nlohmann::json::from_cbor(record.payload);
        } catch (const nlohmann::json::exception &) {
            history.warnings.push_back("a record that is not CBOR was skipped");
            continue;
        }
        if (!body.is_object())
            continue;
        if (body.value("v", 0) > kRecordVersion) {
            newer_format = true;
            continue;
        }
        if (record.kind == RecordKind::agent_start) {
            history.starts.push_back({body.value("ts", 0.0), body.value("pid", 0), body.value("version", "")});
            continue;
        }
        if (record.kind != RecordKind::interval)
            continue;
        RecordedWindow window;
        window.tier = record.tier;
        window.start = body.value("start", 0.0);
        window.ts = body.value("ts", 0.0);
        window.resolution_s = body.value("resolution_s", 0.0);
        window.process = body.value("process", nlohmann::json::object());
        window.cgroup = body.value("cgroup", nlohmann::json::object());
        window.mount = body.value("mount", nlohmann::json::object());
        window.events = body.value("events", nlohmann::json::array());
        (record.tier == RecordTier::fine ? fine : coarse).push_back(std::move(window));
    }
    if (newer_format)
        history.warnings.push_back("records of a newer ebpf-diskwatch were skipped");
    auto by_time = [](const RecordedWindow &a, const RecordedWindow &b) { return a.ts < b.ts; };
    std::sort(fine.begin(), fine.end(), by_time);
    std::sort(coarse.begin(), coarse.end(), by_time);
    // The coarse windows that end before the fine tier begins, then the fine
    // ones: each moment once, at the finest resolution kept for it.
    const double fine_from = fine.empty() ? INFINITY : fine.front().start;
    for (auto &window : coarse)
        if (window.ts <= fine_from)
            history.windows.push_back(std::move(window));
    for (auto &window : fine)
        history.windows.push_back(std::move(window));
    std::sort(history.starts.begin(), history.starts.end(),
              [](const AgentStarted &a, const AgentStarted &b) { return a.ts < b.ts; });
    return history;
}

std::optional<double> parse_when(std::string_view text, double now_s, std::string *error)
{
    std::string value(text);
    while (!value.empty() && value.back() == ' ')
        value.pop_back();
    while (!value.empty() && value.front() == ' ')
        value.erase(0, 1);
    if (value == "now")
        return now_s;
    if (!value.empty() && value[0] == '@') {
        try {
            size_t used = 0;
            const double seconds = std::stod(value.substr(1), &used);
            if (used + 1 == value.size())
                return seconds;
        } catch (const std::exception &) {
        }
        *error = "\"" + value + "\" is not @ followed by unix seconds";
        return std::nullopt;
    }
    std::string ago = value;
    if (ago.size() > 4 && ago.compare(ago.size() - 4, 4, " ago") == 0)
        ago.erase(ago.size() - 4);
    std::string ignored;
    if (auto seconds = parse_duration(ago, &ignored))
        return now_s - *seconds;
    // Absolute: a date and a time, or a time today; local time unless it ends in Z.
    struct tm when {};
    const bool utc = !value.empty() && value.back() == 'Z';
    if (utc)
        value.pop_back();
    for (char &c : value)
        if (c == 'T')
            c = ' ';
    const char *end = nullptr;
    for (const char *format : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
        when = {};
        end = ::strptime(value.c_str(), format, &when);
        if (end && *end == '\0')
            break;
        end = nullptr;
    }
    if (!end) {
        for (const char *format : {"%H:%M:%S", "%H:%M"}) {
            struct tm clock {};
            const char *rest = ::strptime(value.c_str(), format, &clock);
            if (rest && *rest == '\0') {
                const time_t now = static_cast<time_t>(now_s);
                if (utc)
                    ::gmtime_r(&now, &when);
                else
                    ::localtime_r(&now, &when);
                when.tm_hour = clock.tm_hour;
                when.tm_min = clock.tm_min;
                when.tm_sec = clock.tm_sec;
                end = rest;
                break;
            }
        }
    }
    if (!end) {
        *error = "\"" + value + "\" is not a time: say \"2h ago\", \"30m\", \"14:00\", \"2026-12-05 14:00\", "
                                "\"2026-12-05T14:00:00Z\" or \"@UNIXSECONDS\"";
        return std::nullopt;
    }
    when.tm_isdst = -1;
    const time_t seconds = utc ? ::timegm(&when) : ::mktime(&when);
    return static_cast<double>(seconds);
}

}  // namespace diskwatch
