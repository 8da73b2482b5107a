// Checks for numeric command-line values (docs/cli.md, "Exit codes": a usage
// error exits 2 with one line). CLI11's own range checks accept "nan" and
// "inf" (they compare false either way) and say "not in range 0 to
// 1.79769e+308"; these refuse both and say what is expected, in words.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "rules/units.h"

namespace diskwatch {

inline std::string format_number(double value)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value);
    return text;
}

// A finite number of seconds in [min_s, max_s].
inline CLI::Validator seconds_between(double min_s, double max_s)
{
    return CLI::Validator(
        [min_s, max_s](std::string &value) -> std::string {
            char *end = nullptr;
            const double seconds = std::strtod(value.c_str(), &end);
            const auto range = format_number(min_s) + " and " + format_number(max_s);
            if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(seconds))
                return "expected a number of seconds between " + range;
            if (seconds < min_s || seconds > max_s)
                return "expected a number of seconds between " + range;
            return {};
        },
        "SECONDS");
}

// A duration as the policy writes them ("10m", "1h30m", "90s"), above 0 and at most max_s.
inline CLI::Validator policy_duration(double max_s)
{
    return CLI::Validator(
        [max_s](std::string &value) -> std::string {
            std::string error;
            const auto seconds = parse_duration(value, &error);
            if (!seconds)
                return error;
            if (*seconds <= 0 || *seconds > max_s)
                return "expected a duration above 0 and at most " + format_number(max_s) + "s";
            return {};
        },
        "DURATION");
}

// A whole number in [min, max].
inline CLI::Validator count_between(long long min, long long max)
{
    return CLI::Validator(
        [min, max](std::string &value) -> std::string {
            long long count = 0;
            const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), count);
            if (ec != std::errc() || end != value.data() + value.size() || count < min || count > max)
                return "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
            return {};
        },
        "N");
}

}  // namespace diskwatch
