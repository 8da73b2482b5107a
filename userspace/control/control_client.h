// The CLI's side of the control socket: one request, one response.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "control/control_protocol.h"

namespace diskwatch::control {

// Sends `request` and waits up to `timeout` for the one-line response. On
// failure returns nullopt and says why in *error ("no agent running ...",
// "permission denied ...", "timed out ...", "malformed response ...").
std::optional<nlohmann::json> send_request(const std::string &socket_path, const nlohmann::json &request,
                                           std::chrono::milliseconds timeout, std::string *error);

}  // namespace diskwatch::control
