#include "vocabulary/event.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "vocabulary/internal_errors.h"

namespace diskwatch {

std::string rfc3339_utc(std::chrono::system_clock::time_point time)
{
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
    std::tm utc {};
    gmtime_r(&seconds, &utc);
    char buffer[64];
    const size_t n = std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(buffer + n, sizeof(buffer) - n, ".%06lldZ", static_cast<long long>(micros % 1000000));
    return buffer;
}


namespace {

constexpr bool kRequired = true, kOptional = false;

constexpr std::array<EventField, 3> kHeader {{{"ts", kRequired}, {"event", kRequired}, {"host", kRequired}}};

constexpr std::array<EventField, 9> kAgentStart {{{"version", kRequired},
                                                  {"pid", kRequired},
                                                  {"hooks", kRequired},
                                                  {"programs", kRequired},
                                                  {"policy", kRequired},
                                                  {"rules", kRequired},
                                                  {"dry_run", kRequired},
                                                  {"interval_s", kRequired},
                                                  {"reconciled", kRequired}}};

constexpr std::array<EventField, 2> kAgentStop {{{"alarms", kRequired}, {"events_dropped", kRequired}}};

constexpr std::array<EventField, 6> kPolicyReload {{{"ok", kRequired},
                                                    {"source", kRequired},
                                                    {"rules", kRequired},
                                                    {"dry_run", kRequired},
                                                    {"error", kOptional},
                                                    {"note", kOptional}}};

constexpr std::array<EventField, 15> kRunaway {{{"state", kRequired},
                                                {"rule", kRequired},
                                                {"scope", kRequired},
                                                {"condition", kRequired},
                                                {"action", kRequired},
                                                {"protected", kRequired},
                                                {"protected_reason", kOptional},
                                                {"process", kRequired},
                                                {"cgroup", kRequired},
                                                {"mount", kRequired},
                                                {"write_bps", kRequired},
                                                {"growth_bps", kRequired},
                                                {"written_bytes", kRequired},
                                                {"eta_full_s", kRequired},
                                                {"when", kRequired}}};

constexpr std::array<EventField, 32> kAction {{{"action", kRequired},
                                               {"rule", kRequired},
                                               {"requested", kOptional},
                                               {"requested_uid", kOptional},
                                               {"requested_pid", kOptional},
                                               {"dry_run", kRequired},
                                               {"mechanism", kRequired},
                                               {"protected", kRequired},
                                               {"protected_reason", kOptional},
                                               {"process", kRequired},
                                               {"cgroup", kRequired},
                                               {"mount", kRequired},
                                               {"scope", kRequired},
                                               {"write_bps", kOptional},
                                               {"growth_bps", kOptional},
                                               {"condition", kOptional},
                                               {"when", kOptional},
                                               {"throttle_to_bps", kOptional},
                                               {"throttle_for_s", kOptional},
                                               {"stops", kOptional},
                                               {"defied", kOptional},
                                               {"signal", kOptional},
                                               {"kill_grace_s", kOptional},
                                               {"targets", kOptional},
                                               {"pre_kill", kOptional},
                                               {"escalated", kOptional},
                                               {"stopped_fraction", kOptional},
                                               {"omitted", kOptional},
                                               {"instead_of", kOptional},
                                               {"snooze_s", kOptional},
                                               {"snoozed_until", kOptional},
                                               {"reason", kOptional}}};

constexpr std::array<EventField, 9> kThrottleDefied {{{"rule", kRequired},
                                                      {"scope", kRequired},
                                                      {"mechanism", kRequired},
                                                      {"process", kRequired},
                                                      {"cgroup", kRequired},
                                                      {"sender", kRequired},
                                                      {"count", kRequired},
                                                      {"total", kRequired},
                                                      {"owed_bytes", kOptional}}};

constexpr std::array<EventField, 6> kMountUsage {{{"state", kRequired},
                                                  {"mount", kRequired},
                                                  {"write_bps", kRequired},
                                                  {"growth_bps", kRequired},
                                                  {"usage_alert_percent", kRequired},
                                                  {"top_writers", kRequired}}};

constexpr std::array<EventField, 6> kMountEta {{{"state", kRequired},
                                                {"mount", kRequired},
                                                {"write_bps", kRequired},
                                                {"growth_bps", kRequired},
                                                {"eta_alert_s", kRequired},
                                                {"top_writers", kRequired}}};

constexpr std::array<EventField, 7> kAgentWarning {{{"warning", kRequired},
                                                    {"count", kOptional},
                                                    {"total", kOptional},
                                                    {"rule", kOptional},
                                                    {"process", kOptional},
                                                    {"cgroup", kOptional},
                                                    {"thread", kOptional}}};

const std::array<EventTypeInfo, 9> kTypes {{
    {EventType::agent_start, "agent.start", kAgentStart},
    {EventType::agent_stop, "agent.stop", kAgentStop},
    {EventType::policy_reload, "policy.reload", kPolicyReload},
    {EventType::runaway, "runaway", kRunaway},
    {EventType::action, "action", kAction},
    {EventType::throttle_defied, "throttle.defied", kThrottleDefied},
    {EventType::mount_usage, "mount.usage", kMountUsage},
    {EventType::mount_eta, "mount.eta", kMountEta},
    {EventType::agent_warning, "agent.warning", kAgentWarning},
}};

std::atomic<bool> g_strict {false};

// A builder's mistake: an exception only when strict (the tests); otherwise
// counted and reported as an internal error, and the caller carries on.
void schema_mistake(const std::string &what)
{
    if (g_strict.load(std::memory_order_relaxed))
        throw std::logic_error(what);
    InternalErrors::instance().record(kEventBuilderErrors, what);
}

bool is_header_field(std::string_view field)
{
    for (const auto &known : kHeader)
        if (known.name == field)
            return true;
    return false;
}

// As top --json: printable ASCII only (non-ASCII as \uXXXX), so no name can
// drive the terminal of whoever tails the stream.
std::shared_ptr<const std::string> serialize(const nlohmann::ordered_json &record)
{
    return std::make_shared<const std::string>(
        record.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace));
}

}  // namespace

void set_event_schema_strict(bool strict) { g_strict.store(strict, std::memory_order_relaxed); }

bool event_schema_strict() { return g_strict.load(std::memory_order_relaxed); }

std::span<const EventTypeInfo> event_types() { return kTypes; }

std::span<const EventField> event_header_fields() { return kHeader; }

const EventTypeInfo *event_type_info(EventType type)
{
    for (const auto &info : kTypes)
        if (info.type == type)
            return &info;
    return nullptr;
}

std::string_view to_string(EventType type)
{
    const auto *info = event_type_info(type);
    return info ? info->name : std::string_view();
}

EventType event_type_named(std::string_view name)
{
    for (const auto &info : kTypes)
        if (info.name == name)
            return info.type;
    return EventType::unknown;
}

bool event_field_known(EventType type, std::string_view field)
{
    if (is_header_field(field))
        return true;
    if (const auto *info = event_type_info(type))
        for (const auto &known : info->fields)
            if (known.name == field)
                return true;
    return false;
}

const std::string &Event::line() const
{
    static const std::string none;  // only an event moved from has no line
    return line_ ? *line_ : none;
}

Event Event::from_line(std::string_view line)
{
    Event event;
    auto record = nlohmann::ordered_json::parse(line, nullptr, false);
    event.record_ = record.is_discarded() ? nlohmann::ordered_json::object() : std::move(record);
    if (event.record_.is_object())
        if (auto it = event.record_.find("event"); it != event.record_.end() && it->is_string())
            event.type_ = event_type_named(it->get_ref<const std::string &>());
    event.line_ = std::make_shared<const std::string>(line);
    return event;
}

Event Event::from_record(const nlohmann::ordered_json &record)
{
    Event event;
    event.record_ = record;
    if (record.is_object())
        if (auto it = record.find("event"); it != record.end() && it->is_string())
            event.type_ = event_type_named(it->get_ref<const std::string &>());
    event.line_ = serialize(event.record_);
    return event;
}

EventBuilder::EventBuilder(EventType type, const std::string &host) : type_(type), fields_(nlohmann::json::object())
{
    if (!event_type_info(type))
        schema_mistake("EventBuilder: not an event type (vocabulary/event.cpp)");  // built with no type's fields
    fields_["ts"] = rfc3339_utc(std::chrono::system_clock::now());
    fields_["event"] = to_string(type);
    fields_["host"] = host;
}

EventBuilder &EventBuilder::set(std::string_view field, nlohmann::json value)
{
    if (is_header_field(field)) {
        schema_mistake("event " + std::string(to_string(type_)) + ": its header field " + std::string(field) +
                       " is the builder's, not set (vocabulary/event.cpp)");
        return *this;
    }
    if (!event_field_known(type_, field)) {
        schema_mistake("event " + std::string(to_string(type_)) + " has no field " + std::string(field) +
                       ": dropped (vocabulary/event.cpp, docs/events.md)");
        return *this;
    }
    fields_[std::string(field)] = std::move(value);
    return *this;
}

Event EventBuilder::build() const
{
    if (const auto *info = event_type_info(type_))
        for (const auto &field : info->fields)
            if (field.required && !fields_.contains(std::string(field.name)))
                schema_mistake("event " + std::string(to_string(type_)) + " lacks its field " +
                               std::string(field.name) + ": left out (vocabulary/event.cpp)");
    Event event;
    event.type_ = type_;
    event.record_ = nlohmann::ordered_json(fields_);  // sorted, as the map-backed object iterates
    event.line_ = serialize(event.record_);           // once, here: line() is a plain read
    return event;
}

}  // namespace diskwatch
