// The control socket's protocol (docs/control.md): one JSON object per line
// each way. A request names its command in "cmd"; every response has "ok",
// and either the command's fields or "error" in words.
//   {"cmd":"status"}
//   {"cmd":"release","target":"1234"}            (a pid, or a cgroup path)
//   {"cmd":"release","target":"1234","for_s":600} (and not acted on again for 10 minutes)
//   {"cmd":"snapshot","by":"process"}           (process | cgroup | mount)
//   {"cmd":"act","action":"throttle","target":"1234","rate_bps":1048576,"requested_by":"top"}
//                                     (throttle | kill | release | protect; for_s: a throttle's
//                                      length, a release's snooze)
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace diskwatch::control {

inline constexpr const char *kDefaultSocketPath = "/run/ebpf-diskwatch/control.sock";
inline constexpr size_t kMaxLineBytes = size_t{64} * 1024;
inline constexpr double kMaxSnoozeSeconds = 7 * 24 * 3600;  // release --for: at most a week
inline constexpr double kMaxThrottleBps = 1099511627776.0;   // 2^40: act's rate_bps at most 1 TiB/s

// Checks the shape of a request: an object with a string "cmd", and the
// arguments a known command needs. Commands the server does not know are
// reported by the server (it knows which handlers exist).
bool validate_request(const nlohmann::json &request, std::string *error);

nlohmann::json status_request();
nlohmann::json release_request(const std::string &target, double snooze_s = 0);
nlohmann::json snapshot_request(const std::string &by);
// An operator's request from top: `rate_bps` for a throttle, `for_s` (> 0) a
// throttle's length or a release's snooze.
nlohmann::json act_request(const std::string &action, const std::string &target, double rate_bps = 0,
                           double for_s = 0);

nlohmann::json error_response(const std::string &message);

}  // namespace diskwatch::control
