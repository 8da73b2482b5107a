// Small files the enforcer writes: cgroup control files (cgroup.freeze,
// cgroup.kill, io.max) and its own state file. Plain open/write: an error is
// a value, never an exception.
#pragma once

#include <optional>
#include <string>

namespace diskwatch {

// Writes `value` to a cgroup control file; false with "PATH: write "VALUE": reason".
bool write_control(const std::string &path, const std::string &value, std::string *error);
// The first line of a control file; empty when it cannot be read (the cgroup
// went). Read through resolve/kernel_files.h, the one reader.
std::string read_control(const std::string &path);
// Creates or truncates `path` with `text` (one write loop); false with the reason.
bool write_whole_file(const std::string &path, const std::string &text, std::string *error);

}  // namespace diskwatch
