#include "recorder/flight_recorder.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "views/json_report.h"
#include "vocabulary/internal_errors.h"

namespace diskwatch {

namespace {

constexpr size_t kQueueMax = 64;            // refreshes: 16 s at the default 0.25 s interval
constexpr size_t kEventsPerRecordMax = 200;  // a storm of events is not worth a record's room
constexpr double kReopenEveryS = 60;
constexpr double kSyncEveryS = 60;

double unix_now_s()
{
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

nlohmann::json window_record(double start, double resolution_s, const WriteReport &process, const WriteReport &cgroup,
                             const WriteReport &mount, nlohmann::json events)
{
    return {{"v", kRecordVersion},
            {"start", start},
            {"ts", process.ts},
            {"resolution_s", resolution_s},
            {"process", to_json(process)},
            {"cgroup", to_json(cgroup)},
            {"mount", to_json(mount)},
            {"events", std::move(events)}};
}

std::string recorder_dir(const RecorderSettings &settings)
{
    if (!settings.path.empty())
        return settings.path;
    // systemd sets STATE_DIRECTORY for StateDirectory= (a colon-separated list).
    if (const char *state = std::getenv("STATE_DIRECTORY"); state && state[0] == '/') {
        std::string first(state);
        first.resize(std::min(first.size(), first.find(':')));
        return first + "/recorder";
    }
    return kDefaultRecorderDir;
}

FlightRecorder::FlightRecorder(RecorderSettings settings, std::string agent_version,
                               std::function<void(const std::string &)> warn)
    : settings_(std::move(settings)), dir_(recorder_dir(settings_)), version_(std::move(agent_version)),
      warn_(std::move(warn))
{
    status_.dir = dir_;
    thread_ = std::thread([this] { run(); });
}

FlightRecorder::~FlightRecorder()
{
    stop(std::chrono::milliseconds::max());
}

void FlightRecorder::say(const std::string &warning)
{
    // Under the lock: once stop() gave up on the thread, no warning reaches
    // an agent that is going away.
    std::lock_guard lock(mutex_);
    if (warn_)
        warn_(warning);
}

bool FlightRecorder::stop(std::chrono::milliseconds wait)
{
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
    const auto done = [this] { return finished_; };
    if (wait == std::chrono::milliseconds::max())
        finished_changed_.wait(lock, done);
    else if (!finished_changed_.wait_for(lock, wait, done)) {
        warn_ = nullptr;
        return false;
    }
    lock.unlock();
    if (thread_.joinable())
        thread_.join();
    return true;
}

void FlightRecorder::capture(RecorderCapture capture)
{
    {
        std::lock_guard lock(mutex_);
        if (captures_.size() >= kQueueMax) {
            ++status_.dropped_captures;
            return;
        }
        captures_.push_back(std::move(capture));
    }
    wake_.notify_one();
}

void FlightRecorder::note_event(const std::string &line)
{
    std::lock_guard lock(mutex_);
    if (events_.size() < kEventsPerRecordMax)
        events_.push_back(line);
}

RecorderStatus FlightRecorder::status() const
{
    std::lock_guard lock(mutex_);
    return status_;
}

void FlightRecorder::try_open(double now_s)
{
    if (writer_ || now_s < next_open_s_)
        return;
    next_open_s_ = now_s + kReopenEveryS;
    StoreLayout layout;
    layout.max_bytes = settings_.max_bytes;
    std::string error, notice;
    writer_ = RecordWriter::open(dir_, layout, &error, &notice);
    std::string problem;
    if (!writer_) {
        problem = "not recording: " + error + " (retried every minute)";
    } else {
        if (!notice.empty())
            say("recorder: " + notice);
        if (!writer_->reservation().caveat.empty())
            say("recorder: its space in " + dir_ + " is not guaranteed: " + writer_->reservation().caveat);
        const nlohmann::json start = {{"v", kRecordVersion}, {"ts", now_s}, {"pid", ::getpid()}, {"version", version_}};
        const auto bytes = nlohmann::json::to_cbor(start);
        std::string write_error;
        // In both tiers: a reader of either sees the restarts.
        for (RecordTier tier : {RecordTier::fine, RecordTier::coarse})
            if (!writer_->append(tier, RecordKind::agent_start, static_cast<int64_t>(now_s * 1000),
                                 std::string_view(reinterpret_cast<const char *>(bytes.data()), bytes.size()),
                                 &write_error))
                problem = write_error;
        writer_->sync();
    }
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        changed = status_.problem != problem;
        status_.problem = problem;
        status_.recording = writer_ != nullptr;
        if (writer_)
            status_.reservation = writer_->reservation();
    }
    if (changed && !problem.empty())
        say("recorder: " + problem);
}

void FlightRecorder::add(Windows &windows, RecordTier tier, double resolution_s, const RecorderCapture &capture)
{
    const auto bucket = static_cast<int64_t>(std::floor(capture.process.ts / resolution_s));
    if (windows.bucket != bucket && !windows.process.empty())
        flush(windows, tier, resolution_s);
    windows.bucket = bucket;
    windows.process.add(capture.process);
    windows.cgroup.add(capture.cgroup);
    windows.mount.add(capture.mount);
}

void FlightRecorder::flush(Windows &windows, RecordTier tier, double resolution_s)
{
    if (windows.process.empty())
        return;
    const double start = windows.process.start_ts();
    WriteReport process = windows.process.take(settings_.rows);
    WriteReport cgroup = windows.cgroup.take(settings_.rows);
    WriteReport mount = windows.mount.take(settings_.rows);
    const nlohmann::json record =
        window_record(start, resolution_s, process, cgroup, mount, std::exchange(windows.events, nlohmann::json::array()));
    if (!writer_) {
        // No store yet (retried every minute): this window is lost, and said to be.
        std::lock_guard lock(mutex_);
        ++status_.write_errors;
        return;
    }
    const auto bytes = nlohmann::json::to_cbor(record);
    std::string error;
    const bool ok = writer_->append(tier, RecordKind::interval, static_cast<int64_t>(process.ts * 1000),
                                    std::string_view(reinterpret_cast<const char *>(bytes.data()), bytes.size()),
                                    &error);
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        if (ok) {
            ++status_.records;
        } else {
            ++status_.write_errors;
            changed = status_.problem != error;
            status_.problem = error;
        }
    }
    if (changed)
        say("recorder: " + error);
    if (ok && tier == RecordTier::fine && settings_.retention_s > 0)
        writer_->expire(static_cast<int64_t>((unix_now_s() - settings_.retention_s) * 1000));
}

void FlightRecorder::run()
{
    // What one pass throws (a name, an allocation) is counted and said, and
    // the next pass runs: the recorder never takes the agent down.
    while (!catch_at_boundary("flight recorder", [this] { run_until_stopped(); }))
        std::this_thread::sleep_for(std::chrono::seconds(1));
    {
        std::lock_guard lock(mutex_);
        finished_ = true;
    }
    finished_changed_.notify_all();
}

void FlightRecorder::run_until_stopped()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || !captures_.empty(); });
        std::deque<RecorderCapture> captures = std::move(captures_);
        captures_.clear();
        std::vector<std::string> events = std::move(events_);
        events_.clear();
        const bool stopping = stopping_;
        lock.unlock();

        if (writer_ && writer_->gone()) {
            // Removed under it: what it writes now would be lost, and hold
            // the unlinked files' space until the agent stops.
            say("recorder: " + dir_ + " was removed; making it again");
            writer_.reset();
            next_open_s_ = 0;
        }
        try_open(unix_now_s());
        for (auto &line : events) {
            // The event's own line: valid JSON in printable ASCII, a name
            // that is not UTF-8 as U+FFFD with its exact bytes in <key>_b64.
            const auto record = nlohmann::json::parse(line, nullptr, false);
            if (record.is_discarded())
                continue;
            for (Windows *windows : {&fine_, &coarse_})
                if (windows->events.size() < kEventsPerRecordMax)
                    windows->events.push_back(record);
        }
        for (const auto &capture : captures) {
            add(fine_, RecordTier::fine, settings_.resolution_s, capture);
            add(coarse_, RecordTier::coarse, settings_.coarse_resolution_s, capture);
        }
        if (stopping) {
            flush(fine_, RecordTier::fine, settings_.resolution_s);
            flush(coarse_, RecordTier::coarse, settings_.coarse_resolution_s);
        }
        // fdatasync only for a power loss (a killed agent loses nothing the
        // page cache has): once a minute, and at the end. It can wait for
        // seconds behind the very writer filling the disk.
        const double now_s = unix_now_s();
        if (writer_ && (stopping || now_s - synced_s_ >= kSyncEveryS)) {
            writer_->sync();
            synced_s_ = now_s;
        }
        if (stopping)
            return;
        lock.lock();
    }
}

}  // namespace diskwatch
