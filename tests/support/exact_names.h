// Test support: the exact bytes of a name in ebpf-diskwatch's JSON. A name
// that is not valid UTF-8 is printed with U+FFFD in `key` and its exact
// bytes in `key_b64` (docs/top-json.md and docs/events.md, "Names"). The
// decoder is the tests' own, independent of the encoder it checks.
// Header-only: the unit tests and the fuzzers use it too.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace diskwatch::test {

inline std::string base64_decode(const std::string &text)
{
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=')
            break;
        const auto index = alphabet.find(c);
        if (index == std::string::npos)
            throw std::invalid_argument("not base64: " + text);
        buffer = (buffer << 6) | static_cast<unsigned>(index);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xff);
        }
    }
    return out;
}

inline std::string exact_name(const nlohmann::json &object, const std::string &key)
{
    if (object.contains(key + "_b64"))
        return base64_decode(object.at(key + "_b64").get<std::string>());
    return object.at(key).get<std::string>();
}

}  // namespace diskwatch::test
