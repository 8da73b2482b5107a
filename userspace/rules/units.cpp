#include "rules/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "resolve/numbers.h"

namespace diskwatch {

namespace {

void say(std::string *error, const std::string &text)
{
    if (error)
        *error = cut_for_message(text, 400);
}

// Leading decimal number (digits with at most one '.'); the rest goes to *rest.
std::optional<double> leading_number(std::string_view text, std::string_view *rest)
{
    size_t end = 0;
    bool dot = false;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || (text[end] == '.' && !dot))) {
        dot = dot || text[end] == '.';
        ++end;
    }
    if (end == 0 || text.substr(0, end) == ".")
        return std::nullopt;
    double value = 0;
    const auto number = text.substr(0, end);
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || ptr != number.data() + number.size())
        return std::nullopt;
    *rest = text.substr(end);
    return value;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text, std::string *error)
{
    const std::string_view original = trim_blanks(text);
    std::string_view unit;
    auto number = leading_number(original, &unit);
    if (!number) {
        say(error, "\"" + std::string(original) + "\" is not a size (examples: 512, 64KiB, 10GiB, 20MB)");
        return std::nullopt;
    }
    unit = trim_blanks(unit);
    struct Unit {
        std::string_view name;
        double bytes;
    };
    static constexpr Unit units[] = {
        {"", 1},          {"B", 1},         {"KiB", 1024.0},  {"MiB", 1048576.0}, {"GiB", 1073741824.0},
        {"TiB", 1099511627776.0},           {"kB", 1e3},      {"KB", 1e3},        {"MB", 1e6},
        {"GB", 1e9},      {"TB", 1e12},
    };
    for (const auto &candidate : units) {
        if (unit == candidate.name) {
            const double bytes = *number * candidate.bytes;
            if (!std::isfinite(bytes) || bytes >= 1.8e19) {
                say(error, "\"" + std::string(original) + "\" is too large");
                return std::nullopt;
            }
            // std::round, not llround: sizes between 2^63 and 1.8e19 do not fit a long long.
            return static_cast<uint64_t>(std::round(bytes));
        }
    }
    say(error, "\"" + std::string(original) + "\": unknown size unit \"" + std::string(unit) +
                   "\" (use KiB, MiB, GiB, TiB, kB, MB, GB or TB)");
    return std::nullopt;
}

std::optional<double> parse_rate(std::string_view text, std::string *error)
{
    const std::string_view original = trim_blanks(text);
    if (original.size() < 2 || original.substr(original.size() - 2) != "/s") {
        say(error, "\"" + std::string(original) + "\" is not a rate (a size per second, like 50MiB/s)");
        return std::nullopt;
    }
    std::string size_error;
    auto bytes = parse_size(original.substr(0, original.size() - 2), &size_error);
    if (!bytes) {
        say(error, "\"" + std::string(original) + "\" is not a rate: " + size_error);
        return std::nullopt;
    }
    return static_cast<double>(*bytes);
}

std::optional<double> parse_duration(std::string_view text, std::string *error)
{
    const std::string_view original = trim_blanks(text);
    std::string_view rest = original;
    double total = 0;
    bool any = false;
    while (!rest.empty()) {
        std::string_view unit_and_more;
        auto number = leading_number(rest, &unit_and_more);
        if (!number)
            break;
        size_t unit_length = 0;
        while (unit_length < unit_and_more.size() && std::isalpha(static_cast<unsigned char>(unit_and_more[unit_length])))
            ++unit_length;
        const auto unit = unit_and_more.substr(0, unit_length);
        double scale;
        if (unit == "ms")
            scale = 0.001;
        else if (unit == "s")
            scale = 1;
        else if (unit == "m")
            scale = 60;
        else if (unit == "h")
            scale = 3600;
        else if (unit == "d")
            scale = 86400;  // the recorder's retention, explain --since
        else
            break;
        total += *number * scale;
        any = true;
        rest = unit_and_more.substr(unit_length);
    }
    if (!any || !rest.empty()) {
        say(error, "\"" + std::string(original) + "\" is not a duration (use ms, s, m, h or d: 250ms, 2s, 10m, 1h, 7d)");
        return std::nullopt;
    }
    // Hundreds of digits, or many huge terms, add up to infinity.
    if (!std::isfinite(total)) {
        say(error, "\"" + std::string(original) + "\" is too long a duration");
        return std::nullopt;
    }
    return total;
}

std::string format_size(double bytes)
{
    static constexpr const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int index = 0;
    while (std::fabs(bytes) >= 1024 && index < 4) {
        bytes /= 1024;
        ++index;
    }
    char buffer[32];
    if (bytes == std::floor(bytes))
        std::snprintf(buffer, sizeof(buffer), "%.0f%s", bytes, units[index]);
    else
        std::snprintf(buffer, sizeof(buffer), "%.1f%s", bytes, units[index]);
    return buffer;
}

std::string format_duration(double seconds)
{
    char buffer[32];
    if (seconds < 1)
        std::snprintf(buffer, sizeof(buffer), "%.0fms", seconds * 1000);
    else if (seconds < 120)
        std::snprintf(buffer, sizeof(buffer), "%gs", seconds);
    else if (seconds < 7200)
        std::snprintf(buffer, sizeof(buffer), "%gm", seconds / 60);
    else
        std::snprintf(buffer, sizeof(buffer), "%gh", seconds / 3600);
    return buffer;
}

std::string cut_for_message(std::string_view text, size_t max_bytes)
{
    if (text.size() <= max_bytes)
        return std::string(text);
    size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
        --end;  // not inside a UTF-8 sequence
    return std::string(text.substr(0, end)) + "... (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace diskwatch
