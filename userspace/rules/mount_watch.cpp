#include "rules/mount_watch.h"

namespace diskwatch {

namespace {
constexpr double kUsageMarginPct = 1.0;  // re-arm usage once 1 point under the line
constexpr double kEtaMargin = 1.5;       // re-arm eta once it is 1.5x the bound (or not filling)
}  // namespace

std::vector<MountAlert> MountWatch::evaluate(const std::vector<MountReport> &mounts)
{
    std::vector<MountAlert> alerts;
    for (const auto &mount : mounts) {
        if (settings_.usage_alert_percent) {
            bool &raised = usage_raised_[mount.dev];
            if (!raised && mount.used_pct >= *settings_.usage_alert_percent) {
                raised = true;
                alerts.push_back({MountAlert::Kind::usage, true, mount});
            } else if (raised && mount.used_pct < *settings_.usage_alert_percent - kUsageMarginPct) {
                raised = false;
                alerts.push_back({MountAlert::Kind::usage, false, mount});
            }
        }
        if (settings_.eta_alert_s) {
            bool &raised = eta_raised_[mount.dev];
            const bool filling_fast = mount.eta_full_s && *mount.eta_full_s < *settings_.eta_alert_s;
            const bool clear = !mount.eta_full_s || *mount.eta_full_s > *settings_.eta_alert_s * kEtaMargin;
            if (!raised && filling_fast) {
                raised = true;
                alerts.push_back({MountAlert::Kind::eta, true, mount});
            } else if (raised && clear) {
                raised = false;
                alerts.push_back({MountAlert::Kind::eta, false, mount});
            }
        }
    }
    return alerts;
}

}  // namespace diskwatch
