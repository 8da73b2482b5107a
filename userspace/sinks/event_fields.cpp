#include "sinks/event_fields.h"

namespace diskwatch {

namespace {

// What a string is after the NDJSON line's round trip (ensure_ascii, bytes that
// are not UTF-8 replaced): itself when ASCII (nearly always), else through the
// same serializer and back, one string literal, so the fields say what the
// line says.
std::string as_in_line(const std::string &text)
{
    for (const unsigned char c : text)
        if (c >= 0x80)
            return nlohmann::ordered_json::parse(
                       nlohmann::ordered_json(text).dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace))
                .get<std::string>();
    return text;
}

void flatten_into(const nlohmann::ordered_json &node, const std::string &prefix, int depth_left,
                  std::vector<std::pair<std::string, std::string>> &out)
{
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string name = prefix.empty() ? it.key() : prefix + "." + it.key();
        const auto &value = it.value();
        if (value.is_object()) {
            if (depth_left > 1)
                flatten_into(value, name, depth_left - 1, out);
        } else if (value.is_string()) {
            out.emplace_back(name, as_in_line(value.get_ref<const std::string &>()));
        } else if (value.is_boolean()) {
            out.emplace_back(name, value.get<bool>() ? "true" : "false");
        } else if (value.is_number()) {
            out.emplace_back(name, value.dump());
        }
    }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> flatten_event(const nlohmann::ordered_json &event, int max_depth)
{
    std::vector<std::pair<std::string, std::string>> out;
    if (event.is_object())
        flatten_into(event, "", max_depth, out);
    return out;
}

std::string string_field(const nlohmann::ordered_json &event, const char *key, const std::string &fallback)
{
    if (!event.is_object())
        return fallback;
    auto it = event.find(key);
    return it != event.end() && it->is_string() ? it->get<std::string>() : fallback;
}

bool bool_field(const nlohmann::ordered_json &event, const char *key, bool fallback)
{
    if (!event.is_object())
        return fallback;
    auto it = event.find(key);
    return it != event.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

int event_severity(const Event &event)
{
    constexpr int err = 3, warning = 4, notice = 5, info = 6;
    const auto &record = event.record();
    if (!record.is_object())
        return notice;
    switch (event.type()) {
    case EventType::action:
        return bool_field(record, "dry_run") ? notice : warning;
    case EventType::runaway:
    case EventType::mount_usage:
    case EventType::mount_eta:
    case EventType::agent_warning:
        return warning;
    case EventType::policy_reload:
        return record.contains("error") ? err : info;
    case EventType::agent_start:
    case EventType::agent_stop:
        return info;
    case EventType::throttle_defied:
    case EventType::unknown:
        break;
    }
    return notice;
}

std::string event_name(const Event &event)
{
    const std::string_view name = to_string(event.type());
    return name.empty() ? string_field(event.record(), "event") : std::string(name);
}

}  // namespace diskwatch
