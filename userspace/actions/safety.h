// The enforcer's safety habits (docs/policy.md, *Safety*; issue 16), each a
// small piece of bookkeeping with one job, kept apart from the enforcer's
// mechanisms (signals, the kernel's throttles, state.json):
//  - Snoozes: a subject released with `release TARGET --for D` is not acted
//    on again until D has passed.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "rules/rule_engine.h"

namespace diskwatch {

// Subjects an operator released for a while. Keyed by the subject's key and,
// for a process, its start time: a later process on the same pid is not snoozed.
class Snoozes {
public:
    struct Snooze {
        double until_s = 0;         // steady clock
        std::string until_rfc3339;  // the same moment, wall clock, for events
    };
    static constexpr size_t kMaxSnoozes = 4096;  // the oldest-ending go first past this

    void add(const Subject &subject, double now_s, double for_s);
    // The subject's snooze, if it is snoozed at now_s (an expired one is forgotten).
    std::optional<Snooze> active(const Subject &subject, double now_s);
    void prune(double now_s);
    size_t size() const { return snoozes_.size(); }

private:
    static std::string key_of(const Subject &subject);
    std::map<std::string, Snooze> snoozes_;
};

}  // namespace diskwatch
