#include <catch2/catch.hpp>

#include "aggregate/mount_growth.h"

using namespace diskwatch;

TEST_CASE("a filling mount gets a growth rate and a time to full", "[growth]")
{
    MountGrowthTracker tracker(30.0);
    tracker.observe(7, 0.0, 1000, 10000);
    CHECK_FALSE(tracker.growth_bps(7).has_value());
    tracker.observe(7, 2.0, 3000, 8000);  // 1000 B/s
    REQUIRE(tracker.growth_bps(7).has_value());
    CHECK(*tracker.growth_bps(7) == Approx(1000.0));
    CHECK(*tracker.eta_full_s(7) == Approx(8.0));
}

TEST_CASE("a mount that is flat or shrinking is not filling", "[growth]")
{
    MountGrowthTracker tracker;
    tracker.observe(7, 0.0, 5000, 100);
    tracker.observe(7, 1.0, 5000, 100);
    CHECK(*tracker.growth_bps(7) == Approx(0.0));
    CHECK_FALSE(tracker.eta_full_s(7).has_value());
    tracker.observe(7, 2.0, 1000, 4100);
    CHECK(*tracker.growth_bps(7) < 0);
    CHECK_FALSE(tracker.eta_full_s(7).has_value());
    CHECK_FALSE(tracker.eta_full_s(99).has_value());
}

TEST_CASE("the growth rate covers a sliding window", "[growth]")
{
    MountGrowthTracker tracker(10.0);
    tracker.observe(7, 0.0, 0, 1'000'000);
    tracker.observe(7, 5.0, 50'000, 1'000'000);   // 10 KB/s at first
    for (int t = 6; t <= 30; ++t)                  // then flat for 25 s
        tracker.observe(7, t, 50'000, 1'000'000);
    CHECK(*tracker.growth_bps(7) == Approx(0.0));
}
