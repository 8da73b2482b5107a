// Sizes, rates and durations as a person writes them in a policy file:
// "50MiB/s", "10GiB", "250ms", "1h". One job: text -> number, or the reason not.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace diskwatch {

// "512", "4KiB", "10GiB", "1TiB", "5kB", "20MB", "3GB" -> bytes. Binary
// (KiB, MiB, GiB, TiB) and decimal (kB, MB, GB, TB) units; a bare number is
// bytes; "B" is accepted as a unit of one byte. Fractions are allowed ("1.5GiB").
std::optional<uint64_t> parse_size(std::string_view text, std::string *error = nullptr);
// A size followed by "/s": "50MiB/s" -> bytes per second.
std::optional<double> parse_rate(std::string_view text, std::string *error = nullptr);
// "250ms", "2s", "10m", "1h", or a compound "1m30s" -> seconds.
std::optional<double> parse_duration(std::string_view text, std::string *error = nullptr);

// The reverse, for messages and events: 52428800 -> "50MiB".
std::string format_size(double bytes);
std::string format_duration(double seconds);

// Text a user gave (a policy value, a command-line argument) as it is echoed in
// a one-line message: at most max_bytes of its start (cut on a UTF-8
// boundary), then "... (N bytes)". A 50 MB value never becomes a 50 MB line.
std::string cut_for_message(std::string_view text, size_t max_bytes = 200);

}  // namespace diskwatch
