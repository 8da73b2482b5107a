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
    char buffer[40];
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

namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 if it is not one.
size_t utf8_sequence_length(std::string_view text, size_t i, unsigned *code_point)
{
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned lead = byte(i);
    size_t length;
    unsigned cp;
    if (lead < 0x80)
        return *code_point = lead, 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        length = 2, cp = lead & 0x1f;
    else if (lead >= 0xe0 && lead <= 0xef)
        length = 3, cp = lead & 0x0f;
    else if (lead >= 0xf0 && lead <= 0xf4)
        length = 4, cp = lead & 0x07;
    else
        return 0;
    if (i + length > text.size())
        return 0;
    for (size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((length == 3 && cp < 0x800) || (length == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *code_point = cp;
    return length;
}

}  // namespace

std::string terminal_safe(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        unsigned cp = 0;
        const size_t length = utf8_sequence_length(text, i, &cp);
        if (length == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
            const size_t bytes = length == 0 ? 1 : length;
            for (size_t k = 0; k < bytes; ++k) {
                char escaped[8];
                std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned char>(text[i + k]));
                out += escaped;
            }
            i += bytes;
            continue;
        }
        out.append(text.substr(i, length));
        i += length;
    }
    return out;
}

}  // namespace diskwatch
