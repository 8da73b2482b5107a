// The enforcer's kill, split from enforcer.cpp (one file per part of the
// class): what a kill in progress knows, shared by both files. Internal to
// actions/; not a public header.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/enforcer.h"
#include "actions/pre_kill_hook.h"

namespace diskwatch {

struct Enforcer::Kill {
    std::string key;
    std::string rule;
    Subject subject;
    Mechanism mechanism = Mechanism::pidfd_send_signal;
    std::vector<Pidfd> targets;
    std::string cgroup_path;
    double deadline_s = 0;
    double give_up_s = 0;
    bool escalated = false;
    // The re-check before SIGKILL (actions/safety.h): the subject's bytes at
    // the SIGTERM and at the latest evaluation, whether the rule's conditions
    // held then, and the rule's lowest write_rate.
    double sigterm_s = 0;
    double bytes_at_sigterm = -1;
    double bytes_now = -1;
    bool held_now = true;
    std::optional<double> rate_bps;
    // The rule's pre_kill hook, running: the signal waits for it (or its
    // timeout); the event for that signal, ready but for the hook's result.
    std::unique_ptr<HookRun> hook;
    nlohmann::json hook_error;  // the hook could not be started: said in the event
    std::optional<ActionEvent> first_event;
    // An operator's kill (top): who asked, on every event of it, the SIGKILL's too.
    nlohmann::json requested = nlohmann::json::object();
    double grace_s = 0;
};

}  // namespace diskwatch
