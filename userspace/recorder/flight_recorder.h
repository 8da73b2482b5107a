// The agent's flight recorder (docs/explain.md): every refresh's aggregates,
// merged into windows (`resolution`, and `coarse_resolution` for the older
// past), appended to the record store (recorder/record_store.h) with the
// events of the window. It runs on a thread of its own behind a bounded
// queue: the agent's loop never waits for the disk, and a capture that finds
// the queue full is dropped and counted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "recorder/record_store.h"
#include "recorder/report_window.h"
#include "rules/policy.h"

namespace diskwatch {

// The record's payload version: readers skip records of a newer one.
inline constexpr int kRecordVersion = 1;

// One refresh, in the three groupings the live view can replay (the
// container and service groupings are merged from the cgroup rows).
struct RecorderCapture {
    WriteReport process, cgroup, mount;
};

struct RecorderStatus {
    std::string dir;
    bool recording = false;  // the store is open
    std::string problem;     // why not, or the last write error
    Reservation reservation;
    uint64_t records = 0;            // written since the agent started
    uint64_t dropped_captures = 0;   // the queue was full
    uint64_t write_errors = 0;
};

// One window as its record's body (CBOR-encoded into the store): the
// groupings as `top --json` documents, and the window's events.
nlohmann::json window_record(double start, double resolution_s, const WriteReport &process, const WriteReport &cgroup,
                             const WriteReport &mount, nlohmann::json events);

// The directory settings.path names, or its default: $STATE_DIRECTORY's
// first entry under systemd, else kDefaultRecorderDir.
std::string recorder_dir(const RecorderSettings &settings);

class FlightRecorder {
public:
    // Starts the thread; the store is opened there (and retried every
    // minute while it cannot be: a full disk, another agent holding it).
    // `warn` is called on that thread with what a person should know.
    FlightRecorder(RecorderSettings settings, std::string agent_version,
                   std::function<void(const std::string &)> warn);
    // Writes the windows still open, syncs, joins.
    ~FlightRecorder();
    // The same, waiting at most `wait`: false when its disk holds it (a
    // frozen filesystem, a dead NFS server). The caller then lets it go
    // (the process is exiting): an agent never hangs on its recorder.
    bool stop(std::chrono::milliseconds wait);
    FlightRecorder(const FlightRecorder &) = delete;
    FlightRecorder &operator=(const FlightRecorder &) = delete;

    void capture(RecorderCapture capture);
    // An event the agent emitted (its NDJSON line), kept with the window it falls in.
    void note_event(const std::string &line);
    RecorderStatus status() const;

private:
    struct Windows {
        ReportWindow process, cgroup, mount;
        nlohmann::json events = nlohmann::json::array();
        int64_t bucket = -1;
    };
    void run();
    void run_until_stopped();
    void say(const std::string &warning);
    void add(Windows &windows, RecordTier tier, double resolution_s, const RecorderCapture &capture);
    void flush(Windows &windows, RecordTier tier, double resolution_s);
    void try_open(double now_s);

    const RecorderSettings settings_;
    const std::string dir_;
    const std::string version_;
    std::function<void(const std::string &)> warn_;  // under mutex_ (say())
    std::unique_ptr<RecordWriter> writer_;  // the recorder thread's
    Windows fine_, coarse_;
    double next_open_s_ = 0;
    double synced_s_ = 0;  // the last fdatasync

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<RecorderCapture> captures_;
    std::vector<std::string> events_;
    bool finished_ = false;  // the thread is done (its windows written)
    std::condition_variable finished_changed_;
    bool stopping_ = false;
    RecorderStatus status_;
    std::thread thread_;
};

}  // namespace diskwatch
