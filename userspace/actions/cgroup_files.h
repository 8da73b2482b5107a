// Small files the enforcer writes and reads: cgroup control files
// (cgroup.freeze, cgroup.kill, io.max) and its own state file. Plain
// open/read/write: an error is a value, never an exception.
#pragma once

#include <optional>
#include <string>

namespace diskwatch {

// Writes `value` to a cgroup control file; false with "PATH: write "VALUE": reason".
bool write_control(const std::string &path, const std::string &value, std::string *error);
// The first line of a control file; empty when it cannot be read.
std::string read_control(const std::string &path);
// Creates or truncates `path` with `text` (one write loop); false with the reason.
bool write_whole_file(const std::string &path, const std::string &text, std::string *error);
// The whole file (up to 16 MiB); nullopt with errno in *read_errno.
std::optional<std::string> read_whole_file(const std::string &path, int *read_errno);

}  // namespace diskwatch
