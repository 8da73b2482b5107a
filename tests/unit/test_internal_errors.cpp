// A thread's boundary (userspace/events/internal_errors.h, docs/security.md
// row 29): what a loop body throws is counted, reported at most once per
// period per thread, and swallowed.
#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "vocabulary/internal_errors.h"

using namespace diskwatch;

TEST_CASE("an exception at a thread's boundary is counted, reported at most once per period, and swallowed",
          "[agent][errors]")
{
    struct Report {
        std::string thread, what;
        uint64_t total, unreported;
    };
    std::vector<Report> reports;
    InternalErrors::instance().set_reporter(
        [&](const std::string &thread, const std::string &what, uint64_t total, uint64_t unreported) {
            reports.push_back({thread, what, total, unreported});
        });
    const auto count_in = [](const std::map<std::string, uint64_t> &counts, const std::string &thread) {
        const auto it = counts.find(thread);
        return it == counts.end() ? uint64_t {0} : it->second;
    };
    const auto before = InternalErrors::instance().counts();
    const auto count_of = [&](const std::string &thread) {
        return count_in(InternalErrors::instance().counts(), thread) - count_in(before, thread);
    };
    // A body that returns is not an error.
    CHECK(catch_at_boundary("test thread a", [] {}));
    CHECK(count_of("test thread a") == 0);
    // Three throws in a row: all counted, one report (the period is 10 s).
    for (int i = 0; i < 3; ++i)
        CHECK_FALSE(catch_at_boundary("test thread a", [i] { throw std::runtime_error("boom " + std::to_string(i)); }));
    CHECK(count_of("test thread a") == 3);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].thread == "test thread a");
    CHECK(reports[0].what == "boom 0");
    // Another thread has its own period; a throw that is no std::exception is caught too.
    CHECK_FALSE(catch_at_boundary("test thread b", [] { throw 42; }));
    CHECK(count_of("test thread b") == 1);
    REQUIRE(reports.size() == 2);
    CHECK(reports[1].thread == "test thread b");
    CHECK(reports[1].what.find("not a std::exception") != std::string::npos);
    // A reporter that throws itself never lets the error out.
    InternalErrors::instance().set_reporter([](const std::string &, const std::string &, uint64_t, uint64_t) {
        throw std::runtime_error("the reporter fails too");
    });
    CHECK_FALSE(catch_at_boundary("test thread c", [] { throw std::runtime_error("x"); }));
    CHECK(count_of("test thread c") == 1);
    InternalErrors::instance().set_reporter(nullptr);
}
