#include "sinks/queued_sink.h"

#include <chrono>

#include "vocabulary/internal_errors.h"

namespace diskwatch {

QueuedLineSink::QueuedLineSink(size_t capacity) : capacity_(capacity) {}

QueuedLineSink::~QueuedLineSink() { stop(); }

void QueuedLineSink::start() { thread_ = std::thread([this] { run(); }); }

void QueuedLineSink::stop()
{
    {
        std::lock_guard lock(mutex_);
        if (!thread_.joinable())
            return;
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void QueuedLineSink::publish(const Event &event)
{
    const std::string &json_line = event.line();
    {
        std::lock_guard lock(mutex_);
        if (queue_.size() >= capacity_ || stopping_) {
            ++stats_.dropped;
            stats_.last_error = "queue full (" + std::to_string(capacity_) + " events): the output is too slow";
            return;
        }
        ++stats_.published;
        std::string line;
        line.reserve(json_line.size() + 1);
        line.append(json_line);
        line.push_back('\n');
        queue_.push_back(std::move(line));
    }
    wake_.notify_one();
}

void QueuedLineSink::flush(int timeout_ms)
{
    std::unique_lock lock(mutex_);
    drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return queue_.empty() && !writing_; });
}

SinkStats QueuedLineSink::stats() const
{
    std::lock_guard lock(mutex_);
    return stats_;
}

void QueuedLineSink::run()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_)
            break;
        std::string line = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        lock.unlock();
        std::string error = "internal error (counted in status and /metrics)";
        bool ok = false;
        catch_at_boundary("event sink", [&] { ok = write_line(line, &error); });
        lock.lock();
        writing_ = false;
        if (ok) {
            ++stats_.delivered;
        } else {
            ++stats_.dropped;
            stats_.last_error = error;
        }
        if (queue_.empty())
            drained_.notify_all();
    }
    drained_.notify_all();
}

}  // namespace diskwatch
