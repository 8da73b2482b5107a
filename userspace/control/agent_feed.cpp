#include "control/agent_feed.h"

#include <poll.h>

#include <optional>

#include "control/control_client.h"
#include "resolve/mountinfo.h"
#include "resolve/open_files.h"
#include "resolve/overlay.h"
#include "views/json_report.h"

namespace diskwatch {

namespace {

// The agent may wait for its next refresh before answering the first snapshot
// (it builds them only while asked): its interval plus a margin.
constexpr std::chrono::seconds kAnswerTimeout {10};

int action_rank(const std::string &action)
{
    return action == "kill" ? 3 : action == "throttle" ? 2 : action == "offender" ? 1 : 0;
}

}  // namespace

std::unique_ptr<AgentFeed> AgentFeed::attach(const std::string &socket_path, std::string *why)
{
    std::unique_ptr<AgentFeed> feed(new AgentFeed(socket_path));
    for (GroupBy by : {GroupBy::process, GroupBy::cgroup, GroupBy::mount}) {
        auto response = feed->ask(by, why);
        if (!response)
            return nullptr;
        WriteReport cumulative = report_from_json(response->value("report", nlohmann::json::object()));
        cumulative.by = by;
        feed->delta_.next(cumulative, response->value("ts_unix", 0.0), false);
    }
    return feed;
}

std::optional<nlohmann::json> AgentFeed::ask(GroupBy by, std::string *error)
{
    auto response = control::send_request(socket_path_, control::snapshot_request(std::string(to_string(by))),
                                          kAnswerTimeout, error);
    if (!response)
        return std::nullopt;
    if (!response->value("ok", false)) {
        if (error)
            *error = "the agent on " + socket_path_ + " refused: " + response->value("error", std::string("no reason"));
        return std::nullopt;
    }
    if (!response->contains("report") || !(*response)["report"].is_object()) {
        if (error)
            *error = "the agent on " + socket_path_ + " answered a snapshot without a report (an older agent?)";
        return std::nullopt;
    }
    agent_pid_ = response->value("pid", 0);
    agent_programs_ = response->value("programs", size_t {0});
    hooks_ = response->value("hooks", std::string());
    return response;
}

std::optional<std::string> AgentFeed::act(const OperatorAction &action, std::string *error)
{
    auto response = control::send_request(
        socket_path_, control::act_request(action.action, action.target, action.rate_bps, action.for_s),
        kAnswerTimeout, error);
    if (!response)
        return std::nullopt;
    if (!response->value("ok", false)) {
        *error = response->value("error", std::string("refused, no reason given"));
        return std::nullopt;
    }
    return response->value("done", std::string("done"));
}

void AgentFeed::wait(int timeout_ms)
{
    ::poll(nullptr, 0, timeout_ms);
}

std::optional<WriteReport> AgentFeed::refresh(const ReportOptions &options, std::string *error)
{
    auto response = ask(options.by, error);
    if (!response)
        return std::nullopt;
    WriteReport cumulative = report_from_json((*response)["report"]);
    cumulative.by = options.by;
    cumulative.source = ReportSource::agent;
    WriteReport report = delta_.next(cumulative, response->value("ts_unix", 0.0), options.include_idle);
    mark_acted_on(report.rows, response->value("acted_on", nlohmann::json::array()));
    // The agent lists what its own --all-mounts says; without ours, hide what
    // is hidden by default whatever the agent's choice (a mount the agent left
    // out cannot be added here).
    if (!options.all_mounts)
        std::erase_if(report.mounts,
                      [](const MountReport &mount) { return hidden_by_default(mount.fstype, mount.mount); });
    // The agent names no files (its fast loop); top's rows get theirs here.
    // A container's row is on the disk under its overlay, its open files on
    // the overlay: the same mapping as the agent's, read when rows want files.
    std::optional<OverlayAttribution> overlays;
    for (size_t i = 0; i < report.rows.size(); ++i) {
        ReportRow &row = report.rows[i];
        if (i < options.rows_with_files && row.pid && !row.exited) {
            if (!overlays) {
                overlays.emplace(host_device_of_path);
                overlays->reload(MountTable::load());
            }
            std::vector<uint64_t> inodes;
            for (const auto &file : row.files)
                inodes.push_back(file.ino);
            const uint32_t dev = row.kernel_dev;
            row.files = files_written_by(
                static_cast<int>(row.pid), [&overlays, dev](uint32_t file_dev) { return overlays->target(file_dev) == dev; },
                inodes, options.files_per_row);
        } else if (row.files.size() > options.files_per_row) {
            row.files.resize(options.files_per_row);
        }
    }
    return report;
}

std::string AgentFeed::describe() const
{
    return "agent " + std::to_string(agent_pid_) + " (" + hooks_ + ")";
}

void AgentFeed::mark_acted_on(std::vector<ReportRow> &rows, const nlohmann::json &acted_on)
{
    if (!acted_on.is_array())
        return;
    for (const auto &entry : acted_on) {
        if (!entry.is_object())
            continue;
        const std::string target = entry.value("target", std::string());
        const std::string action = entry.value("action", std::string());
        auto matches = [&](const ReportRow &row) {
            if (target.rfind("process:", 0) == 0)
                return std::to_string(row.pid) == target.substr(8);
            if (target.rfind("cgroup:", 0) == 0) {
                const std::string path = target.substr(7);
                if (path.empty() || row.cgroup.empty())
                    return false;
                return row.cgroup == path || (row.cgroup.rfind(path, 0) == 0 &&
                                              (path == "/" || row.cgroup[path.size()] == '/'));
            }
            return false;
        };
        for (auto &row : rows)
            if (matches(row) && action_rank(action) > action_rank(row.agent_action))
                row.agent_action = action;
    }
}

}  // namespace diskwatch
