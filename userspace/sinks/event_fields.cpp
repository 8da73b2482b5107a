#include "sinks/event_fields.h"

namespace diskwatch {

namespace {

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
            out.emplace_back(name, value.get<std::string>());
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

int event_severity(const nlohmann::ordered_json &event)
{
    constexpr int err = 3, warning = 4, notice = 5, info = 6;
    if (!event.is_object())
        return notice;
    const std::string type = string_field(event, "event");
    if (type == "action")
        return bool_field(event, "dry_run") ? notice : warning;
    if (type == "runaway" || type == "mount.usage" || type == "mount.eta" || type == "agent.warning")
        return warning;
    if (type == "policy.reload")
        return event.contains("error") ? err : info;
    if (type == "agent.start" || type == "agent.stop")
        return info;
    return notice;
}

}  // namespace diskwatch
