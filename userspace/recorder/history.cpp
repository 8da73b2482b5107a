#include "recorder/history.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <thread>
#include <tuple>

#include "recorder/flight_recorder.h"
#include "rules/units.h"
#include "views/json_report.h"

namespace diskwatch {

const WriteReport &RecordedWindow::report(GroupBy by) const
{
    auto &cached = reports[static_cast<size_t>(by)];
    if (!cached) {
        const nlohmann::json &document = by == GroupBy::process ? process : by == GroupBy::cgroup ? cgroup : mount;
        cached = report_from_json(document);
        cached->ts = ts;
        cached->source = ReportSource::replay;
        cached->by = by;
    }
    return *cached;
}

namespace {

// One record decoded: a window, an agent's start, or nothing usable.
struct Decoded {
    std::optional<RecordedWindow> window;
    std::optional<AgentStarted> start;
    bool newer_format = false;
    bool not_cbor = false;
};

Decoded decode(const StoredRecord &record, bool prepare)
{
    Decoded out;
    nlohmann::json body;
    try {
        body = nlohmann::json::from_cbor(record.payload);
    } catch (const nlohmann::json::exception &) {
        out.not_cbor = true;
        return out;
    }
    if (!body.is_object())
        return out;
    if (body.value("v", 0) > kRecordVersion) {
        out.newer_format = true;
        return out;
    }
    if (record.kind == RecordKind::agent_start) {
        out.start = AgentStarted {body.value("ts", 0.0), body.value("pid", 0), body.value("version", "")};
        return out;
    }
    if (record.kind != RecordKind::interval)
        return out;
    RecordedWindow window;
    window.tier = record.tier;
    window.start = body.value("start", 0.0);
    window.ts = body.value("ts", 0.0);
    window.resolution_s = body.value("resolution_s", 0.0);
    for (auto [key, target] : {std::pair{"process", &window.process}, {"cgroup", &window.cgroup}, {"mount", &window.mount}})
        if (auto it = body.find(key); it != body.end())
            *target = std::move(*it);
    if (auto it = body.find("events"); it != body.end() && it->is_array())
        window.events = std::move(*it);
    else
        window.events = nlohmann::json::array();
    if (prepare) {
        window.report(GroupBy::process);
        window.report(GroupBy::cgroup);
    }
    out.window = std::move(window);
    return out;
}

// Records, decoded in batches on every core (CBOR to JSON, JSON to reports
// is most of a reading's time), handed on in their order.
class BatchDecoder {
public:
    BatchDecoder(History &history, bool prepare, std::function<void(RecordedWindow &&)> take)
        : history_(history), prepare_(prepare), take_(std::move(take))
    {
    }
    void add(StoredRecord &&record)
    {
        batch_.push_back(std::move(record));
        if (batch_.size() >= kBatch)
            drain();
    }
    void drain()
    {
        const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
        std::vector<Decoded> out(batch_.size());
        std::vector<std::thread> workers;
        for (size_t t = 1; t < threads && t < batch_.size(); ++t)
            workers.emplace_back([&, t] {
                for (size_t i = t; i < batch_.size(); i += threads)
                    out[i] = decode(batch_[i], prepare_);
            });
        for (size_t i = 0; i < batch_.size(); i += threads)
            out[i] = decode(batch_[i], prepare_);
        for (auto &worker : workers)
            worker.join();
        batch_.clear();
        for (auto &decoded : out) {
            newer_format_ = newer_format_ || decoded.newer_format;
            not_cbor_ += decoded.not_cbor;
            if (decoded.start)
                history_.starts.push_back(*decoded.start);
            if (decoded.window)
                take_(std::move(*decoded.window));
        }
    }
    void finish()
    {
        drain();
        if (newer_format_)
            history_.warnings.push_back("records of a newer ebpf-diskwatch were skipped");
        if (not_cbor_)
            history_.warnings.push_back(std::to_string(not_cbor_) + " record(s) that are not CBOR were skipped");
    }

private:
    static constexpr size_t kBatch = 256;
    History &history_;
    bool prepare_;
    std::function<void(RecordedWindow &&)> take_;
    std::vector<StoredRecord> batch_;
    bool newer_format_ = false;
    size_t not_cbor_ = 0;
};

void take_reading(History &history, StoreReading &reading)
{
    for (auto &warning : reading.warnings)
        if (std::find(history.warnings.begin(), history.warnings.end(), warning) == history.warnings.end())
            history.warnings.push_back(std::move(warning));  // a missing directory is said once, not per tier
    history.bytes_on_disk += reading.bytes_on_disk;
    auto widen = [](std::optional<double> &into, std::optional<int64_t> ms, bool oldest) {
        if (!ms)
            return;
        const double s = static_cast<double>(*ms) / 1000;
        if (!into || (oldest ? s < *into : s > *into))
            into = s;
    };
    widen(history.oldest, reading.oldest_ms, true);
    widen(history.newest, reading.newest_ms, false);
}

}  // namespace

History load_history(const std::string &dir, double from_s, double to_s, HistoryResolution resolution,
                     const std::function<void(RecordedWindow &&)> &fold)
{
    History history;
    const auto from_ms = static_cast<int64_t>(std::floor(from_s * 1000));
    const auto to_ms = static_cast<int64_t>(std::ceil(to_s * 1000));
    // The tier that leads is read first; the other only where it is silent:
    // finest: coarse windows that end before the first fine one begins;
    // fewest: fine windows where no coarse window was written (the present,
    // and the holes an agent's death left).
    const bool finest = resolution == HistoryResolution::finest;
    const RecordTier lead = finest ? RecordTier::fine : RecordTier::coarse;
    const RecordTier other = finest ? RecordTier::coarse : RecordTier::fine;
    std::vector<RecordedWindow> led, rest;
    std::optional<double> first_start;
    // fewest: the spans the coarse windows cover. An agent killed or stopped
    // mid-window left its coarse window unwritten: the fine ones fill that hole.
    std::vector<std::pair<double, double>> covered;
    auto keep = [&](std::vector<RecordedWindow> &into) {
        return [&](RecordedWindow &&window) {
            if (!first_start || window.start < *first_start)
                first_start = window.start;
            if (window.tier == RecordTier::coarse)
                covered.emplace_back(window.start, window.ts);
            into.push_back(std::move(window));
        };
    };
    {
        BatchDecoder decoder(history, static_cast<bool>(fold), keep(led));
        StoreReading reading = read_store(dir, from_ms, to_ms, lead, [&](StoredRecord &&r) { decoder.add(std::move(r)); });
        decoder.finish();
        take_reading(history, reading);
    }
    int64_t other_to = to_ms;
    if (finest && first_start)
        other_to = static_cast<int64_t>(std::floor(*first_start * 1000));
    // A fine window whose end falls in a coarse window is in it (the coarse
    // buckets are whole multiples of the fine ones: rules/policy.cpp).
    std::sort(covered.begin(), covered.end());
    auto uncovered = [&](int64_t ts_ms) {
        if (finest)
            return true;  // the coarse ones are the ones cut to fit, by range
        const double ts = static_cast<double>(ts_ms) / 1000;
        // The last coarse window that began before ts (windows are (start, end]:
        // one begins where the one before it ended).
        auto it = std::lower_bound(covered.begin(), covered.end(), std::pair<double, double> {ts, -INFINITY});
        return it == covered.begin() || ts > std::prev(it)->second + 1e-3;
    };
    {
        BatchDecoder decoder(history, static_cast<bool>(fold), keep(rest));
        StoreReading reading = read_store(
            dir, from_ms, other_to, other, [&](StoredRecord &&r) { decoder.add(std::move(r)); }, uncovered);
        decoder.finish();
        take_reading(history, reading);
    }
    // One timeline, oldest first.
    std::vector<RecordedWindow> all = std::move(led);
    all.insert(all.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
    std::stable_sort(all.begin(), all.end(), [](const RecordedWindow &a, const RecordedWindow &b) { return a.ts < b.ts; });
    for (auto &window : all) {
        if (fold)
            fold(std::move(window));
        else
            history.windows.push_back(std::move(window));
    }
    // Each start is in both tiers.
    std::sort(history.starts.begin(), history.starts.end(), [](const AgentStarted &a, const AgentStarted &b) {
        return std::tie(a.ts, a.pid) < std::tie(b.ts, b.pid);
    });
    history.starts.erase(std::unique(history.starts.begin(), history.starts.end(),
                                     [](const AgentStarted &a, const AgentStarted &b) {
                                         return a.ts == b.ts && a.pid == b.pid;
                                     }),
                         history.starts.end());
    return history;
}

namespace {

// A time the record could hold: after 1970, not in the future (a minute's
// clock skew allowed), a number at all (@nan, @inf, @1e300 are not).
std::optional<double> within_reason(double seconds, const std::string &text, double now_s, std::string *error)
{
    if (!std::isfinite(seconds) || seconds < 0) {
        *error = "\"" + text + "\" is not a time the record can hold";
        return std::nullopt;
    }
    if (seconds > now_s + 60) {
        *error = "\"" + text + "\" is in the future";
        return std::nullopt;
    }
    return seconds;
}

}  // namespace

std::optional<double> parse_when(std::string_view text, double now_s, std::string *error)
{
    std::string value(text);
    while (!value.empty() && value.back() == ' ')
        value.pop_back();
    while (!value.empty() && value.front() == ' ')
        value.erase(0, 1);
    if (value == "now")
        return now_s;
    if (value.empty()) {
        *error = "\"\" is not a time: say \"2h ago\", \"14:00\", \"2026-12-05 14:00\" or \"@UNIXSECONDS\"";
        return std::nullopt;
    }
    if (!value.empty() && value[0] == '@') {
        try {
            size_t used = 0;
            const double seconds = std::stod(value.substr(1), &used);
            if (used + 1 == value.size())
                return within_reason(seconds, value, now_s, error);
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
        return within_reason(now_s - *seconds, value, now_s, error);
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
    return within_reason(static_cast<double>(seconds), value, now_s, error);
}

}  // namespace diskwatch
