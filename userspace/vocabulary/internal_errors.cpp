#include "vocabulary/internal_errors.h"

#include <chrono>
#include <exception>

namespace diskwatch {

InternalErrors &InternalErrors::instance()
{
    static InternalErrors errors;
    return errors;
}

void InternalErrors::set_reporter(Reporter reporter)
{
    std::lock_guard lock(mutex_);
    reporter_ = std::move(reporter);
}

void InternalErrors::record(const std::string &thread, const std::string &what) noexcept
{
    try {
        const double now_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        Reporter reporter;
        uint64_t total = 0, unreported = 0;
        {
            std::lock_guard lock(mutex_);
            PerThread &state = threads_[thread];
            ++state.total;
            if (now_s - state.last_report_s < kReportEveryS || !reporter_) {
                ++state.unreported;
                return;
            }
            state.last_report_s = now_s;
            total = state.total;
            unreported = state.unreported;
            state.unreported = 0;
            reporter = reporter_;
        }
        // Outside the lock: the reporter publishes to sinks, whose own
        // threads may record errors too.
        reporter(thread, what, total, unreported);
    } catch (...) {
        // Counting must not throw where a throw is what it guards against
        // (out of memory while building the report): the count is lost, the
        // thread goes on.
    }
}

std::map<std::string, uint64_t> InternalErrors::counts() const
{
    std::lock_guard lock(mutex_);
    std::map<std::string, uint64_t> counts;
    for (const auto &[thread, state] : threads_)
        counts[thread] = state.total;
    return counts;
}

}  // namespace diskwatch
