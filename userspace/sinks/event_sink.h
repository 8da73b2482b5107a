// Where the agent's NDJSON event stream goes (docs/events.md). One interface,
// many sinks: stdout, a file with rotation, a unix socket for log shippers,
// syslog/journald. The agent's rule and action path only ever calls publish(),
// which must never block: a slow or broken sink loses events (counted), it
// never delays detection or enforcement.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vocabulary/event.h"

namespace diskwatch {

struct SinkStats {
    uint64_t published = 0;  // events accepted for delivery
    uint64_t delivered = 0;  // events fully written out
    uint64_t dropped = 0;    // events lost: queue full, subscriber too slow, write error, disk full
    std::string last_error;  // the last error, in words (errno text), empty when healthy
};

class EventSink {
public:
    virtual ~EventSink() = default;
    // One event (vocabulary/event.h): NDJSON sinks write event.line() (serialized
    // once, shared by all), others read its type and record; none parses text.
    // Returns at once; delivery may happen later on the sink's own thread.
    virtual void publish(const Event &event) = 0;
    // SIGHUP: reopen files (logrotate's convention). Default: nothing to do.
    virtual void reopen() {}
    // Deliver what is queued, waiting at most until the deadline (agent stop).
    virtual void flush(int timeout_ms) { (void)timeout_ms; }
    virtual SinkStats stats() const = 0;
    virtual std::string name() const = 0;  // "stdout", "file:/var/log/x.json", "socket:/run/..."
};

}  // namespace diskwatch
