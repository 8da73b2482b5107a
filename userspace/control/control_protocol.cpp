#include "control/control_protocol.h"

#include <cmath>

namespace diskwatch::control {

bool validate_request(const nlohmann::json &request, std::string *error)
{
    auto fail = [&](const std::string &why) {
        if (error)
            *error = why;
        return false;
    };
    if (!request.is_object())
        return fail("a request is a JSON object, e.g. {\"cmd\":\"status\"}");
    auto cmd = request.find("cmd");
    if (cmd == request.end() || !cmd->is_string())
        return fail("missing \"cmd\" (a string)");
    const std::string name = *cmd;
    if (name == "release") {
        auto target = request.find("target");
        if (target == request.end() || !target->is_string() || target->get<std::string>().empty())
            return fail("release needs \"target\": a pid or a cgroup path");
        auto for_s = request.find("for_s");
        if (for_s != request.end() &&
            (!for_s->is_number() || !std::isfinite(for_s->get<double>()) || for_s->get<double>() < 0 ||
             for_s->get<double>() > kMaxSnoozeSeconds))
            return fail("release \"for_s\" must be a number of seconds from 0 to 604800 (a week)");
    }
    if (name == "act") {
        auto action = request.find("action");
        if (action == request.end() || !action->is_string() ||
            (*action != "throttle" && *action != "kill" && *action != "release" && *action != "protect"))
            return fail("act needs \"action\": throttle, kill, release or protect");
        auto target = request.find("target");
        if (target == request.end() || !target->is_string() || target->get<std::string>().empty())
            return fail("act needs \"target\": a pid or a cgroup path");
        auto rate = request.find("rate_bps");
        if (*action == "throttle" &&
            (rate == request.end() || !rate->is_number() || !std::isfinite(rate->get<double>()) ||
             rate->get<double>() < 1 || rate->get<double>() > kMaxThrottleBps))
            return fail("act throttle needs \"rate_bps\": bytes a second, from 1 to 2^40");
        auto for_s = request.find("for_s");
        if (for_s != request.end() &&
            (!for_s->is_number() || !std::isfinite(for_s->get<double>()) || for_s->get<double>() < 0 ||
             for_s->get<double>() > kMaxSnoozeSeconds))
            return fail("act \"for_s\" must be a number of seconds from 0 to 604800 (a week)");
        if (*action == "throttle" && for_s != request.end() && for_s->is_number() && for_s->get<double>() < 1)
            return fail("act throttle \"for_s\" (how long it holds) must be at least 1 second");
        auto by = request.find("requested_by");
        if (by != request.end() && (!by->is_string() || by->get<std::string>().size() > 32))
            return fail("act \"requested_by\" must be a short string (who asks: \"top\")");
    }
    if (name == "snapshot") {
        auto by = request.find("by");
        if (by != request.end()) {
            if (!by->is_string() || (*by != "process" && *by != "cgroup" && *by != "mount"))
                return fail("snapshot \"by\" must be process, cgroup or mount");
        }
    }
    return true;
}

nlohmann::json status_request()
{
    return {{"cmd", "status"}};
}

nlohmann::json release_request(const std::string &target, double snooze_s)
{
    nlohmann::json request {{"cmd", "release"}, {"target", target}};
    if (snooze_s > 0)
        request["for_s"] = snooze_s;
    return request;
}

nlohmann::json act_request(const std::string &action, const std::string &target, double rate_bps, double for_s)
{
    nlohmann::json request {{"cmd", "act"}, {"action", action}, {"target", target}, {"requested_by", "top"}};
    if (action == "throttle")
        request["rate_bps"] = rate_bps;
    if (for_s > 0)
        request["for_s"] = for_s;
    return request;
}

nlohmann::json snapshot_request(const std::string &by)
{
    return {{"cmd", "snapshot"}, {"by", by}};
}

nlohmann::json error_response(const std::string &message)
{
    return {{"ok", false}, {"error", message}};
}

}  // namespace diskwatch::control
