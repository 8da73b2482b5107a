// The common part of line sinks: publish() appends to a bounded queue and
// returns at once; a writer thread delivers. A full queue drops the event and
// counts it (the rule path never waits for a disk or a pipe).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "sinks/event_sink.h"

namespace diskwatch {

class QueuedLineSink : public EventSink {
public:
    explicit QueuedLineSink(size_t capacity = 4096);
    ~QueuedLineSink() override;  // subclasses call stop() in theirs

    void publish(const Event &event) override;
    void flush(int timeout_ms) override;
    SinkStats stats() const override;

protected:
    // Writes one line (with its newline) on the writer thread. Returns false
    // and fills *error when it could not; the line is then counted as dropped.
    virtual bool write_line(const std::string &line, std::string *error) = 0;
    void start();  // subclasses call it once constructed
    void stop();   // delivers what is queued (bounded), joins the thread

private:
    void run();

    const size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable drained_;
    std::deque<std::string> queue_;
    bool stopping_ = false;
    bool writing_ = false;
    SinkStats stats_;
    std::thread thread_;
};

}  // namespace diskwatch
