#include "cli/control_commands.h"

#include <chrono>
#include <iostream>

#include "control/control_client.h"
#include "rules/units.h"
#include "views/format.h"

namespace diskwatch {

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitNoAgent = 3;
constexpr auto kTimeout = std::chrono::seconds(10);

// The agent's answer, or a message and an exit code.
std::optional<nlohmann::json> ask(const std::string &socket, const nlohmann::json &request, const char *command,
                                  int *exit_code)
{
    std::string error;
    auto response = control::send_request(socket, request, kTimeout, &error);
    if (!response) {
        std::cerr << "ebpf-diskwatch " << command << ": " << error << "\n";
        *exit_code = error.rfind("no agent running", 0) == 0 ? kExitNoAgent : kExitFailed;
        return std::nullopt;
    }
    if (!response->value("ok", false)) {
        std::cerr << "ebpf-diskwatch " << command << ": " << response->value("error", std::string("failed")) << "\n";
        *exit_code = kExitFailed;
        return std::nullopt;
    }
    return response;
}

std::string scalar_text(const nlohmann::json &value)
{
    // Names any user controls (a cgroup a container named) reach the
    // operator's terminal: escaped as top escapes them (security.md row 5).
    return terminal_safe(value.is_string() ? value.get<std::string>() : value.dump());
}

}  // namespace

int run_status(const StatusOptions &options)
{
    int exit_code = 0;
    auto status = ask(options.socket, control::status_request(), "status", &exit_code);
    if (!status)
        return exit_code;
    if (options.json) {
        std::cout << status->dump() << "\n";
        return 0;
    }
    // Scalars first, one per line; then each list or object as its own block.
    for (const auto &[key, value] : status->items())
        if (key != "ok" && !value.is_structured())
            std::cout << key << ": " << scalar_text(value) << "\n";
    for (const auto &[key, value] : status->items()) {
        if (!value.is_structured())
            continue;
        std::cout << key << ":";
        if (value.empty()) {
            std::cout << " none\n";
            continue;
        }
        std::cout << "\n";
        for (const auto &[item_key, item] : value.items()) {
            std::cout << "  ";
            if (value.is_object())
                std::cout << item_key << ": ";
            if (item.is_object()) {
                bool first = true;
                for (const auto &[field, field_value] : item.items()) {
                    std::cout << (first ? "" : "  ") << field << "=" << scalar_text(field_value);
                    first = false;
                }
            } else {
                std::cout << scalar_text(item);
            }
            std::cout << "\n";
        }
    }
    return 0;
}

int run_release(const ReleaseOptions &options)
{
    int exit_code = 0;
    const double snooze_s = options.snooze.empty() ? 0 : parse_duration(options.snooze).value_or(0);
    auto response = ask(options.socket, control::release_request(options.target, snooze_s), "release", &exit_code);
    if (!response)
        return exit_code;
    if (snooze_s > 0)
        std::cout << "released " << options.target << "; not acted on again for " << options.snooze << "\n";
    else
        std::cout << "released " << options.target << "\n";
    return 0;
}

}  // namespace diskwatch
