// Sizes, rates and durations as docs/policy.md defines them.
#include <string>

#include <catch2/catch.hpp>

#include "rules/units.h"

using namespace diskwatch;

TEST_CASE("sizes take binary and decimal units", "[policy][units]")
{
    CHECK(parse_size("512") == 512u);
    CHECK(parse_size("512B") == 512u);
    CHECK(parse_size("4KiB") == 4096u);
    CHECK(parse_size("50MiB") == 50u * 1048576u);
    CHECK(parse_size("10GiB") == 10ull * 1073741824ull);
    CHECK(parse_size("1TiB") == 1099511627776ull);
    CHECK(parse_size("5kB") == 5000u);
    CHECK(parse_size("20MB") == 20000000u);
    CHECK(parse_size("3GB") == 3000000000ull);
    CHECK(parse_size("1.5GiB") == 1610612736ull);
    CHECK(parse_size(" 8 MiB ") == 8u * 1048576u);
    std::string error;
    CHECK_FALSE(parse_size("10Gb", &error));
    CHECK(error.find("unknown size unit \"Gb\"") != std::string::npos);
    CHECK_FALSE(parse_size("MiB", &error));
    CHECK_FALSE(parse_size("", &error));
    CHECK_FALSE(parse_size("-1MiB", &error));
}

TEST_CASE("rates are sizes per second", "[policy][units]")
{
    CHECK(parse_rate("50MiB/s") == Approx(50.0 * 1048576));
    CHECK(parse_rate("1kB/s") == Approx(1000));
    std::string error;
    CHECK_FALSE(parse_rate("50MiB", &error));
    CHECK(error.find("not a rate") != std::string::npos);
    CHECK_FALSE(parse_rate("50MiB/m", &error));
    CHECK_FALSE(parse_rate("fast/s", &error));
}

TEST_CASE("durations take ms, s, m, h, d and compounds", "[policy][units]")
{
    CHECK(parse_duration("250ms") == Approx(0.25));
    CHECK(parse_duration("2s") == Approx(2));
    CHECK(parse_duration("10m") == Approx(600));
    CHECK(parse_duration("1h") == Approx(3600));
    CHECK(parse_duration("1m30s") == Approx(90));
    CHECK(parse_duration("0.5s") == Approx(0.5));
    CHECK(parse_duration("7d") == Approx(7 * 86400));  // the recorder's retention, explain --since
    CHECK(parse_duration("1d12h") == Approx(36 * 3600));
    std::string error;
    CHECK_FALSE(parse_duration("10", &error));
    CHECK(error.find("not a duration") != std::string::npos);
    CHECK_FALSE(parse_duration("5w", &error));
    CHECK_FALSE(parse_duration("2s junk", &error));
    // A number of hundreds of digits is a finite double only until it is
    // scaled and summed (found by fuzz_units): refused, never infinity.
    CHECK_FALSE(parse_duration(std::string(308, '9') + "h", &error));  // ~1e308 s, finite; in hours, not
    CHECK(error.find("too long a duration") != std::string::npos);
}

TEST_CASE("sizes above 2^63 bytes and up to the limit are exact, beyond it refused", "[policy][units]")
{
    CHECK(parse_size("10000000000000000000") == 10000000000000000000ull);  // 1e19 > 2^63
    std::string error;
    CHECK_FALSE(parse_size("20000000000000000000", &error));
    CHECK(error.find("too large") != std::string::npos);
    CHECK_FALSE(parse_size(std::string(400, '9'), &error));
}

TEST_CASE("sizes and durations print back the way people write them", "[policy][units]")
{
    CHECK(format_size(50.0 * 1048576) == "50MiB");
    CHECK(format_size(1536) == "1.5KiB");
    CHECK(format_duration(0.25) == "250ms");
    CHECK(format_duration(2) == "2s");
    CHECK(format_duration(600) == "10m");
}
