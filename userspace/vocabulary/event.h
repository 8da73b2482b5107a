// The agent's events as typed records (docs/events.md, a public contract).
// One table names every type and lists its fields (required or optional): the
// builders (events/events.h) set only fields the table lists, the docs are
// checked against it (tests/unit/test_event_schema.cpp), and every sink
// receives an Event: the NDJSON sinks write its one serialization (made once,
// shared), syslog/journald flatten its record, the metrics sink reads its type.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace diskwatch {

// An event's `ts`: RFC 3339, UTC, microseconds: "2026-11-25T17:40:27.123456Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point time);

enum class EventType : uint8_t {
    agent_start,
    agent_stop,
    policy_reload,
    runaway,
    action,
    throttle_defied,
    mount_usage,
    mount_eta,
    agent_warning,
    unknown,  // only a line read back (Event::from_line) that is none of the above
};

struct EventField {
    std::string_view name;
    bool required;
};

struct EventTypeInfo {
    EventType type;
    std::string_view name;                // "agent.start"
    std::span<const EventField> fields;  // besides the header's
};

// The one table: every type but `unknown`, in the order of docs/events.md.
std::span<const EventTypeInfo> event_types();
// The fields every event has: ts, event, host.
std::span<const EventField> event_header_fields();
const EventTypeInfo *event_type_info(EventType type);  // nullptr for unknown
std::string_view to_string(EventType type);            // "" for unknown
EventType event_type_named(std::string_view name);     // unknown when none is
// A header field, or one of the type's fields.
bool event_field_known(EventType type, std::string_view field);

// A builder's mistake (set() of a field the type's table does not list or of a
// header field, build() without a required field, a type outside the table)
// never stops the product: events are built inside the enforcement path,
// between a signal or a control-file write and the record of it. The field is
// dropped (or left out), the mistake counted and reported as an internal error
// of kEventBuilderErrors (vocabulary/internal_errors.h: status, /metrics, an
// agent.warning), and the event still comes out. Strict (the unit tests turn it
// on for every test case: tests/unit/test_event_schema.cpp): std::logic_error
// instead, so that a test exercising the builder fails. Process-wide.
inline constexpr const char *kEventBuilderErrors = "event builder";
void set_event_schema_strict(bool strict);
bool event_schema_strict();

class EventBuilder;

// One event: its type and its record (ts, event, host and the type's fields,
// keys in sorted order: what the NDJSON line has always been).
class Event {
public:
    EventType type() const { return type_; }
    const nlohmann::ordered_json &record() const { return record_; }
    // The NDJSON line, without newline: printable ASCII (non-ASCII as \uXXXX,
    // bytes that are not UTF-8 as U+FFFD; names carry their exact bytes in
    // <key>_b64, vocabulary/json_names.h). Serialized once, when the event is
    // made (EventBuilder::build, from_record; from_line keeps its line), then
    // shared by every sink: a plain read, safe from any thread.
    const std::string &line() const;
    std::shared_ptr<const std::string> shared_line() const { return line_; }

    // An event read back from a stream (tests, tools replaying one): the type
    // its "event" names (unknown when none or not a string); the line kept as
    // given, even when it is not JSON (the record is then an empty object).
    // Not how the agent makes its events: that is events/events.h.
    static Event from_line(std::string_view line);
    static Event from_record(const nlohmann::ordered_json &record);

private:
    friend class EventBuilder;
    Event() = default;
    EventType type_ = EventType::unknown;
    nlohmann::ordered_json record_ = nlohmann::ordered_json::object();
    std::shared_ptr<const std::string> line_;
};

// Builds one event of a type; used by the per-type builders of
// events/events.h only. set() takes only the fields the table lists for the
// type (never ts, event, host: the header is the builder's) and build() wants
// every required one: otherwise a builder's mistake, dropped and counted (or
// std::logic_error when strict: see set_event_schema_strict above).
class EventBuilder {
public:
    EventBuilder(EventType type, const std::string &host);  // ts: now
    EventBuilder &set(std::string_view field, nlohmann::json value);
    bool has(std::string_view field) const { return fields_.contains(field); }
    const nlohmann::json &get(std::string_view field) const { return fields_.at(field); }
    Event build() const;

private:
    EventType type_;
    nlohmann::json fields_;  // std::map-backed: keys sorted, as the stream's lines always were
};

}  // namespace diskwatch
