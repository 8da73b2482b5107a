// Mount alerts: usage above a percentage, time-to-full below a bound. One
// alert per crossing (re-armed when the mount is back under, with a margin so
// a mount hovering at the line does not flap).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/write_report.h"
#include "rules/policy.h"

namespace diskwatch {

struct MountAlert {
    enum class Kind { usage, eta };
    Kind kind = Kind::usage;
    bool raised = true;  // false: back under the line (the alert clears)
    MountReport mount;
};

class MountWatch {
public:
    explicit MountWatch(MountAlerts settings) : settings_(settings) {}
    std::vector<MountAlert> evaluate(const std::vector<MountReport> &mounts);
    void set(MountAlerts settings) { settings_ = settings; }

private:
    MountAlerts settings_;
    std::map<std::string, bool> usage_raised_;  // by dev
    std::map<std::string, bool> eta_raised_;
};

}  // namespace diskwatch
