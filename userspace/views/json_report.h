// The `top --json` document: one object per refresh, on one line.
// The contract is docs/top-json.md; tests/unit/test_json_report.cpp holds it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "events/json_names.h"  // put_name: names as docs/top-json.md says

namespace diskwatch {

nlohmann::json to_json(const WriteReport &report);
// One line, no trailing newline, printable ASCII only (non-ASCII escaped as
// \uXXXX). Names that are not valid UTF-8 (names are bytes to the kernel)
// show U+FFFD for the bad bytes and carry their exact bytes in `<key>_b64`.
std::string to_json_line(const WriteReport &report);

}  // namespace diskwatch
