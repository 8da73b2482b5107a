// The `top --json` document: one object per refresh, on one line.
// The contract is docs/top-json.md; tests/unit/test_json_report.cpp holds it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"

namespace diskwatch {

nlohmann::json to_json(const WriteReport &report);
// One line, no trailing newline. Strings that are not valid UTF-8 (names are
// bytes to the kernel) have the bad bytes replaced by U+FFFD, never a broken line.
std::string to_json_line(const WriteReport &report);

}  // namespace diskwatch
