// Rule evaluation: per (rule, subject) byte histories built from each
// refresh, and the rule's conditions checked against them: every condition
// is a volume within a window, so a writer's shape in time (bursts, pauses,
// a duty cycle) cannot hide its bytes. Pure logic (no
// kernel, no clock of its own): the agent feeds it rows and the time.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/write_report.h"
#include "rules/policy.h"

namespace diskwatch {

// Who a rule is about: one process, or one cgroup (its processes together).
struct Subject {
    RuleScope scope = RuleScope::process;
    uint32_t pid = 0;  // process scope: the process; cgroup scope: its largest writer
    std::string comm;
    std::string exe;
    uint32_t uid = 0;
    // When that process started (seconds since boot), read when the agent
    // first saw its pid; 0: unknown. With pid, who the process is: the
    // enforcer acts only on a process with this start time, never on a later
    // one that reused the pid.
    double start_boot_s = 0;
    uint64_t cgroup_id = 0;
    std::string cgroup;  // path under the cgroup v2 root
    // The container its cgroup names (id) and what its runtime says of it
    // (resolve/containers.h); empty when none or unknown.
    std::string container;
    std::string container_name;
    std::string container_image;
    std::string container_image_id;
    std::string compose_project;
    std::string compose_service;
    std::string mount;   // the matching mount it wrote the most to
    std::string dev;
    std::string fstype;
    double mount_used_pct = 0;                 // of that mount, at the evaluation
    std::optional<double> mount_eta_full_s;    // of that mount (all its writers), nullopt: not filling
    bool exited = false;  // process scope: the process is gone
    // "process:<pid>" or "cgroup:<id>": the deduplication and enforcement key.
    std::string key() const;
};

// The subject a row is, in `scope` (a cgroup's subject leaves out the
// row's process), on the row's mount.
Subject subject_of(const ReportRow &row, RuleScope scope);

// Numbers for one rule and subject at one evaluation.
struct RuleMeasures {
    double write_bps = 0;    // over the rule's `for` window (or the last interval)
    double growth_bps = 0;   // its share of its mount's net growth
    uint64_t written_bytes = 0;  // within the rule's `within`
    std::optional<double> eta_full_s;
    std::string condition;   // the first condition that held: write_rate|growth_rate|written|eta_full|mount_usage
    // Whether the rule's conditions held at this evaluation (holding lasts a
    // quiet spell longer), and every byte the subject wrote since the rule
    // began tracking it: the re-check before SIGKILL compares two of these.
    bool held_now = false;
    double cumulative_bytes = 0;
};

struct Finding {
    enum class Change { started, ended };
    Change change = Change::started;
    size_t rule_index = 0;
    Subject subject;
    RuleMeasures measures;
};

// A mount's state, as the rules see it.
struct MountState {
    std::string mount;
    uint64_t available_bytes = 0;
    double write_bps = 0;
    std::optional<double> fill_bps;
    double used_pct = 0;
    std::optional<double> eta_full_s;
};

// Does the volume written within the window [now - for, now] exceed
// rate x for? The test of `write_rate: R, for: D` (and of growth_rate): the
// same as `written: R x D, within: D`, whatever the bytes' shape in time.
// history: (time, cumulative bytes), times ascending; bytes of an interval
// are taken as spread evenly over it. for_s == 0: the last interval (one
// evaluation) alone. measured_bps: the window's bytes / for (or the last
// interval's rate).
bool volume_exceeds(const std::deque<std::pair<double, double>> &history, double rate_bps, double for_s,
                    double now_s, double *measured_bps = nullptr);

class RuleEngine {
public:
    explicit RuleEngine(std::vector<PolicyRule> rules) : rules_(std::move(rules)) {}

    // One refresh: process rows (GroupBy::process, all of them, exited
    // included) and the mounts. Returns the state changes: a rule starting to
    // hold for a subject, or ending (no condition held for max(for, 1s)).
    std::vector<Finding> evaluate(double now_s, const std::vector<ReportRow> &rows,
                                  const std::vector<MountState> &mounts);

    // True while the rule holds for the subject (between started and ended).
    bool holds(size_t rule_index, const std::string &subject_key) const;
    // The latest numbers for a (rule, subject), if tracked.
    std::optional<RuleMeasures> measures(size_t rule_index, const std::string &subject_key) const;
    // Subjects currently holding any rule.
    std::vector<std::pair<size_t, Subject>> holding() const;
    const std::vector<PolicyRule> &rules() const { return rules_; }
    size_t tracked() const { return tracks_.size(); }
    // Does this row count for this rule (selectors: comm, exe, cgroup, container,
    // image, compose_project, compose_service, mount, uid)?
    static bool row_matches(const PolicyRule &rule, const ReportRow &row);

private:
    struct Track {
        Subject subject;
        std::deque<std::pair<double, double>> bytes;   // (time, cumulative bytes written)
        std::deque<std::pair<double, double>> growth;  // (time, cumulative growth)
        double cumulative_bytes = 0;
        double cumulative_growth = 0;
        double last_bytes_s = 0;  // when it last wrote
        double last_held_s = -1;
        bool holding = false;
        RuleMeasures measures;
        std::optional<double> eta_full_s;
    };

    std::vector<PolicyRule> rules_;
    std::map<std::pair<size_t, std::string>, Track> tracks_;
    std::optional<double> last_eval_s_;
};

}  // namespace diskwatch
