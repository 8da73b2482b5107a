// What a thread's loop caught at its boundary: an exception that would
// otherwise have ended the process (std::terminate). The agent must outlive
// every runaway writer, so each long-lived thread (the agent's loop, the duty
// cycle, each sink, the control and metrics servers, top's loop) runs its body
// through catch_at_boundary(): the error is counted per thread (status,
// /metrics) and reported as an agent.warning at most once per thread every
// kReportEveryS, and the thread carries on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace diskwatch {

class InternalErrors {
public:
    static constexpr double kReportEveryS = 10;
    // thread, what(), errors in that thread so far, and how many were caught
    // since the last report without one of their own.
    using Reporter =
        std::function<void(const std::string &thread, const std::string &what, uint64_t total, uint64_t unreported)>;

    // The process's one instance: the threads live in modules that know
    // nothing of each other, and an error must be counted wherever it is caught.
    static InternalErrors &instance();

    // Where reports go (the agent's event stream); none: counted only.
    void set_reporter(Reporter reporter);
    void record(const std::string &thread, const std::string &what) noexcept;
    std::map<std::string, uint64_t> counts() const;

private:
    struct PerThread {
        uint64_t total = 0;
        uint64_t unreported = 0;
        double last_report_s = -1e18;
    };
    mutable std::mutex mutex_;
    std::map<std::string, PerThread> threads_;
    Reporter reporter_;
};

// Runs body(); an exception it throws is recorded for `thread` and swallowed.
// True when body() returned normally.
template <typename Body>
bool catch_at_boundary(const char *thread, Body &&body) noexcept
{
    try {
        body();
        return true;
    } catch (const std::exception &e) {
        InternalErrors::instance().record(thread, e.what());
    } catch (...) {
        InternalErrors::instance().record(thread, "an exception that is not a std::exception");
    }
    return false;
}

}  // namespace diskwatch
