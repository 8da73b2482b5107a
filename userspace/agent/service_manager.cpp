#include "agent/service_manager.h"

#include <systemd/sd-daemon.h>

#include <spdlog/spdlog.h>

namespace diskwatch {

ServiceManager::ServiceManager()
{
    uint64_t usec = 0;
    // 0: keep WATCHDOG_USEC/WATCHDOG_PID in the environment; only the main
    // pid may notify (NotifyAccess=main), so the guard, which inherits it,
    // can never feed the watchdog for a hung agent.
    if (::sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        watchdog_s_ = static_cast<double>(usec) / 1e6;
}

void ServiceManager::notify(const std::string &state)
{
    const int sent = ::sd_notify(0, state.c_str());
    if (sent < 0)
        spdlog::warn("sd_notify({}) failed: errno {}", state.substr(0, state.find('\n')), -sent);
}

void ServiceManager::ready(const std::string &status)
{
    notify("READY=1\nSTATUS=" + status);
}

void ServiceManager::reloading()
{
    notify("RELOADING=1\nSTATUS=reloading the policy");
}

void ServiceManager::reloaded(const std::string &status)
{
    notify("READY=1\nSTATUS=" + status);
}

void ServiceManager::stopping()
{
    notify("STOPPING=1\nSTATUS=releasing what it holds, then exiting");
}

void ServiceManager::alive(double now_s)
{
    // Every eighth of the interval at most, and the loop sleeps no longer than
    // that (max_sleep_s): a pass may take up to three quarters of the
    // interval before systemd gives up on it.
    if (!watchdog_s_ || now_s - last_alive_s_ < *watchdog_s_ / 8)
        return;
    last_alive_s_ = now_s;
    notify("WATCHDOG=1");
}

std::optional<double> ServiceManager::max_sleep_s() const
{
    if (!watchdog_s_)
        return std::nullopt;
    return *watchdog_s_ / 8;
}

}  // namespace diskwatch
