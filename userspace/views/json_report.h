// The `top --json` document: one object per refresh, on one line.
// The contract is docs/top-json.md; tests/unit/test_json_report.cpp holds it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "aggregate/write_report.h"
#include "vocabulary/json_names.h"  // put_name: names as docs/top-json.md says

namespace diskwatch {

nlohmann::json to_json(const WriteReport &report);
// The `drops` object: every reason of vocabulary/drop_reasons.h by its name
// (top --json's `drops`, and the agent's `status`).
nlohmann::json drops_json(const DropCounters &drops);
// One line, no trailing newline, printable ASCII only (non-ASCII escaped as
// \uXXXX). Names that are not valid UTF-8 (names are bytes to the kernel)
// show U+FFFD for the bad bytes and carry their exact bytes in `<key>_b64`.
std::string to_json_line(const WriteReport &report);

// The exact bytes of a name put_name wrote: `<key>_b64` decoded, else `<key>`.
std::string get_name(const nlohmann::json &object, const std::string &key);

// The inverse of to_json, for `top` attached to an agent (the control socket's
// snapshot): names come back as their exact bytes; keys it lacks stay at their
// defaults, keys it does not know are ignored. `ts` is left 0 (the caller has it).
WriteReport report_from_json(const nlohmann::json &document);

}  // namespace diskwatch
