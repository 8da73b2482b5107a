// Names any user controls (comm, exe, cgroup and mount paths, file names) in
// JSON: one helper for every document that carries them, `top --json`
// (docs/top-json.md, "Names") and the agent's events (docs/events.md, "Names").
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace diskwatch {

// Sets object[key] to the name, and object[key + "_b64"] to its exact bytes
// when it is not valid UTF-8 (the string then shows U+FFFD for those bytes).
void put_name(nlohmann::json &object, const std::string &key, const std::string &value);

// RFC 4648 base64 with padding.
std::string base64(std::string_view bytes);

}  // namespace diskwatch
