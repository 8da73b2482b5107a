// Numbers and names made fit for a person's terminal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "vocabulary/utf8.h"  // is_valid_utf8, utf8_sequence_length: the views cut and escape by it

namespace diskwatch {

std::string human_bytes(double bytes);            // "1.5G", "512K", "0B" (IEC, powers of 1024)
std::string human_rate(double bytes_per_second);  // "12.3M/s"
std::string human_duration(std::optional<double> seconds);  // "3h12m", "45s", "-" when nullopt
std::string rfc3339_utc(double unix_seconds);     // "2026-11-25T17:24:41.123Z"

// Fits a path into `width` columns keeping its end, the part that tells
// mounts and cgroups apart: "/tmp/dw-loop-XAbPGd/mnt" -> "...XAbPGd/mnt".
std::string fit_path(const std::string &path, size_t width);

// A name that any unprivileged user controls (comm, path, cgroup) made safe to
// print: control characters (C0, DEL, C1) and bytes that are not valid UTF-8
// are shown as \xNN and a backslash as \\, so no escape sequence reaches the
// terminal raw, no name can fake a line or a column, and no name can pass for
// another by spelling out an escape.
std::string terminal_safe(std::string_view text);

}  // namespace diskwatch
