// An operator's requests from the live view (the control socket's `act`,
// docs/control.md): throttle, kill, release or protect the selected row's
// process or cgroup. Each goes through the enforcer as a rule's action does
// (protection, snoozes, the safety settings, dry run), under a rule made for
// the request (rules/policy.h, kRequestedRuleName), and its event says who
// asked. Split from agent.cpp: one file per part of the class.
#include <algorithm>
#include <cctype>
#include <chrono>

#include "agent/agent.h"
#include "control/control_server.h"
#include "resolve/processes.h"
#include "rules/units.h"
#include "vocabulary/steady_clock.h"

namespace diskwatch {

namespace {

bool all_digits(const std::string &text)
{
    return !text.empty() && text.size() <= 10 &&
           std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// "with the policy's grace": the longest kill_grace of its kill rules, or a
// rule's default when it has none.
double policy_kill_grace(const Policy &policy)
{
    double grace = PolicyRule{}.kill_grace_s;
    bool any = false;
    for (const auto &rule : policy.rules)
        if (rule.action == RuleAction::kill || rule.escalate_after_s) {
            grace = any ? std::max(grace, rule.kill_grace_s) : rule.kill_grace_s;
            any = true;
        }
    return grace;
}

}  // namespace

nlohmann::json Agent::act(const nlohmann::json &request, uint32_t peer_uid, int32_t peer_pid)
{
    // Validated by control::validate_request: the fields are there and typed.
    const std::string action = request.at("action");
    const std::string target = request.at("target");
    const std::string shown = cut_for_message(target);  // a target is up to 64 KiB: messages echo its start
    PolicyRule::Requester requester;
    requester.by = request.value("requested_by", std::string("control socket"));
    requester.uid = peer_uid;
    requester.pid = peer_pid;

    if (action == "release") {
        const nlohmann::json requested {
            {"requested", requester.by}, {"requested_uid", requester.uid}, {"requested_pid", requester.pid}};
        std::string error;
        const double snooze_s = request.value("for_s", 0.0);
        if (!enforcer_->release(target, "requested", &error, snooze_s, requested))
            throw control::ControlError(error);
        return {{"done", "released " + shown}};
    }

    // The subject as the agent counted it: a pid's or a cgroup's rows since
    // the start (the largest describes it, as a rule's largest row does).
    const bool process = all_digits(target);
    if (!process && target.front() != '/')
        throw control::ControlError("target must be a pid or a cgroup path (starting with /), not " + shown);
    double interval_s = 0;
    const WriteReport report =
        cumulative_report(process ? GroupBy::process : GroupBy::cgroup, std::chrono::seconds(5), &interval_s);
    const ReportRow *largest = nullptr;
    for (const auto &row : report.rows) {
        const bool match = process ? std::to_string(row.pid) == target : row.cgroup == target;
        if (match && (!largest || row.total_bytes > largest->total_bytes))
            largest = &row;
    }
    if (!largest) {
        // A slice in the tree view: its children wrote, it did not itself.
        const bool parent = !process && std::any_of(report.rows.begin(), report.rows.end(), [&](const ReportRow &row) {
            return row.cgroup.rfind(target + "/", 0) == 0;
        });
        throw control::ControlError(parent ? "cgroup " + shown +
                                                 " has not written itself, only cgroups below it have: act on one of them"
                                           : (process ? "pid " : "cgroup ") + shown +
                                                 " has written nothing this agent has counted");
    }
    Subject subject = subject_of(*largest, process ? RuleScope::process : RuleScope::cgroup);
    if (process && subject.exited)
        throw control::ControlError("pid " + shown + " has exited");
    if (process && subject.start_boot_s <= 0)
        // Who the process is: a later one on this pid is never acted on.
        subject.start_boot_s = read_process_start_boot_s(static_cast<int>(subject.pid)).value_or(0);

    if (action == "protect") {
        enforcer_->protect_on_request(subject, requester);
        return {{"done", "protected " + subject.key() + " until the agent restarts"}};
    }

    PolicyRule rule;
    rule.name = kRequestedRuleName;
    rule.scope = subject.scope;
    rule.requested = requester;
    if (action == "throttle") {
        rule.action = RuleAction::throttle;
        rule.throttle_to_bps = request.at("rate_bps").get<double>();
        rule.throttle_for_s = request.value("for_s", rule.throttle_for_s);
    } else {
        rule.action = RuleAction::kill;
        rule.kill_grace_s = policy_kill_grace(policy());
    }
    RuleMeasures measures;
    measures.write_bps = largest->write_bps;
    measures.condition = "requested";
    measures.held_now = true;
    // No rule's numbers to re-check before SIGKILL: still running after the
    // grace, it is killed (safety.h: "no numbers since the SIGTERM").
    measures.cumulative_bytes = -1;
    std::string outcome;
    if (!enforcer_->act_on_request(rule, subject, measures, steady_now_s(), &outcome))
        throw control::ControlError(outcome);
    return {{"done", outcome}};
}

}  // namespace diskwatch
