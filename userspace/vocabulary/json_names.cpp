#include "vocabulary/json_names.h"

#include "vocabulary/utf8.h"

namespace diskwatch {

// RFC 4648 base64 with padding: what `base64 -d` and every JSON consumer's
// standard library decode.
std::string base64(std::string_view bytes)
{
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned triple = static_cast<unsigned char>(bytes[i]) << 16 |
                                static_cast<unsigned char>(bytes[i + 1]) << 8 | static_cast<unsigned char>(bytes[i + 2]);
        out += kAlphabet[(triple >> 18) & 63];
        out += kAlphabet[(triple >> 12) & 63];
        out += kAlphabet[(triple >> 6) & 63];
        out += kAlphabet[triple & 63];
    }
    if (i < bytes.size()) {
        const bool two = i + 1 < bytes.size();
        const unsigned triple =
            static_cast<unsigned char>(bytes[i]) << 16 | (two ? static_cast<unsigned char>(bytes[i + 1]) << 8 : 0u);
        out += kAlphabet[(triple >> 18) & 63];
        out += kAlphabet[(triple >> 12) & 63];
        out += two ? kAlphabet[(triple >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

// A name that any user controls (comm, exe, cgroup or mount path) holds any
// bytes, a JSON string only Unicode. Valid UTF-8 goes in `key` as it is (the
// encoder escapes quotes, backslashes and control characters). Otherwise `key`
// shows U+FFFD for each byte that is not UTF-8 (for people), and `key_b64`
// carries the exact bytes, so the name round-trips and two names never merge.
void put_name(nlohmann::json &object, const std::string &key, const std::string &value)
{
    object[key] = value;
    if (!is_valid_utf8(value))
        object[key + "_b64"] = base64(value);
}

}  // namespace diskwatch
