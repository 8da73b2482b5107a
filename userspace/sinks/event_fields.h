// The structured side of an event (vocabulary/event.h) for sinks that carry fields
// of their own (syslog structured data, journald fields): the scalar leaves of
// the event's record, flattened with dotted names ("process.pid"), and the
// severity an operator expects for each event type (docs/integrations.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "vocabulary/event.h"

namespace diskwatch {

// Scalar leaves (strings, numbers, booleans) down to `max_depth` levels of
// nested objects, in the record's order (sorted keys for the agent's events).
// Arrays (top_writers) and nulls are left to the JSON message itself. Strings
// as the NDJSON line has them: bytes that are not UTF-8 as U+FFFD.
std::vector<std::pair<std::string, std::string>> flatten_event(const nlohmann::ordered_json &event, int max_depth = 2);

// A field of an event as a string / bool, or the fallback when it is absent,
// null or of another type: a sink never throws on an event it did not expect.
std::string string_field(const nlohmann::ordered_json &event, const char *key, const std::string &fallback = "");
bool bool_field(const nlohmann::ordered_json &event, const char *key, bool fallback = false);

// syslog severities (RFC 5424 6.2.1): 3 err, 4 warning, 5 notice, 6 info.
int event_severity(const Event &event);
// The event's type name: the table's, or for a line read back of no known
// type, what its "event" says.
std::string event_name(const Event &event);

}  // namespace diskwatch
