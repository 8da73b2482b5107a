// systemd's service protocol (sd_notify(3), through libsystemd): readiness
// once every program is attached (Type=notify), reload and stop notices, a
// one-line status for `systemctl status`, and the watchdog's keep-alive from
// the main loop (WatchdogSec=). Outside systemd (no NOTIFY_SOCKET) each call
// does nothing.
#pragma once

#include <optional>
#include <string>

namespace diskwatch {

class ServiceManager {
public:
    ServiceManager();  // reads the watchdog interval, if the unit asks for one

    void ready(const std::string &status);
    void reloading();
    void reloaded(const std::string &status);
    void stopping();

    // After each pass of the main loop that did not throw: a keep-alive at
    // most every eighth of the watchdog interval. Only the main loop sends
    // them, so a loop that hangs (or fails every pass) stops them and systemd
    // aborts and restarts the agent (its guard then releases what it held:
    // agent/guard.h).
    void alive(double now_s);
    // How long the main loop may sleep and still keep the watchdog fed.
    std::optional<double> max_sleep_s() const;

private:
    void notify(const std::string &state);

    std::optional<double> watchdog_s_;
    double last_alive_s_ = -1e18;
};

}  // namespace diskwatch
