#include "views/format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace diskwatch {

std::string human_bytes(double bytes)
{
    static const char *units[] = {"B", "K", "M", "G", "T", "P", "E"};
    int unit = 0;
    while (std::fabs(bytes) >= 1024.0 && unit < 6) {
        bytes /= 1024.0;
        ++unit;
    }
    char buffer[32];
    if (unit == 0)
        std::snprintf(buffer, sizeof(buffer), "%.0f%s", bytes, units[unit]);
    else
        std::snprintf(buffer, sizeof(buffer), bytes < 10 ? "%.2f%s" : bytes < 100 ? "%.1f%s" : "%.0f%s", bytes,
                      units[unit]);
    return buffer;
}

std::string human_rate(double bytes_per_second) { return human_bytes(bytes_per_second) + "/s"; }

std::string human_duration(std::optional<double> seconds)
{
    if (!seconds || !std::isfinite(*seconds) || *seconds < 0)
        return "-";
    const long long s = static_cast<long long>(*seconds);
    char buffer[32];
    if (s >= 86400)
        std::snprintf(buffer, sizeof(buffer), "%lldd%lldh", s / 86400, (s % 86400) / 3600);
    else if (s >= 3600)
        std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        std::snprintf(buffer, sizeof(buffer), "%lldm%02llds", s / 60, s % 60);
    else
        std::snprintf(buffer, sizeof(buffer), "%llds", s);
    return buffer;
}

std::string rfc3339_utc(double unix_seconds)
{
    const time_t whole = static_cast<time_t>(unix_seconds);
    const int millis = static_cast<int>((unix_seconds - static_cast<double>(whole)) * 1000.0);
    struct tm utc {};
    gmtime_r(&whole, &utc);
    char buffer[80];  // room for any int in each field: GCC checks the worst case
    std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis < 0 ? 0 : millis > 999 ? 999 : millis);
    return buffer;
}

std::string fit_path(const std::string &path, size_t width)
{
    if (path.size() <= width || width < 4)
        return path;
    // ASCII "..." keeps printf's byte-based column widths aligned; cut on a
    // UTF-8 boundary so no half character is printed.
    size_t start = path.size() - (width - 3);
    while (start < path.size() && (static_cast<unsigned char>(path[start]) & 0xc0) == 0x80)
        ++start;
    return "..." + path.substr(start);
}

std::string terminal_safe(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        unsigned cp = 0;
        const size_t length = utf8_sequence_length(text, i, &cp);
        // Controls, and the bidirectional overrides and isolates: a name
        // must not reorder what follows it on the operator's screen.
        const bool bidi = (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
        if (length == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || bidi) {
            const size_t bytes = length == 0 ? 1 : length;
            for (size_t k = 0; k < bytes; ++k) {
                char escaped[8];
                std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned char>(text[i + k]));
                out += escaped;
            }
            i += bytes;
            continue;
        }
        if (cp == '\\') {
            out += "\\\\";  // doubled, so a name typed as "\x1b" never looks like an escaped ESC
            i += 1;
            continue;
        }
        out.append(text.substr(i, length));
        i += length;
    }
    return out;
}

}  // namespace diskwatch
