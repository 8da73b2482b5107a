// libFuzzer target (docs/security.md, row 4): /proc/self/mountinfo as the
// kernel writes it holds mount points that users choose.
//   - any text parses without crashing; what is not mountinfo is skipped and
//     counted, never half-read;
//   - a mount point of any bytes, escaped as the kernel escapes it (space, tab,
//     newline, backslash as \ooo), decodes back exactly.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_check.h"
#include "resolve/mountinfo.h"

namespace {


// What the kernel's seq_path/mangle_path does to a path in mountinfo.
std::string kernel_escape(const std::string &path)
{
    std::string out;
    for (char c : path) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
            char octal[8];
            std::snprintf(octal, sizeof(octal), "\\%03o", static_cast<unsigned char>(c));
            out += octal;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    size_t skipped = 0;
    const auto entries = diskwatch::parse_mountinfo(text, &skipped);
    for (const auto &entry : entries)
        check(entry.mount_point.size() <= text.size());  // decoding only ever shrinks

    // Round trip of one mount point made of the input (NUL ends a C string
    // in the kernel, so none is in a real path).
    if (text.find('\0') != std::string::npos || text.empty())
        return 0;
    const std::string path = "/" + text;
    const std::string line = "50 27 7:0 / " + kernel_escape(path) + " rw,noatime shared:9 - ext4 /dev/loop0 rw\n";
    skipped = 0;
    const auto parsed = diskwatch::parse_mountinfo(line, &skipped);
    check(parsed.size() == 1 && skipped == 0);
    check(parsed[0].mount_point == path);
    check(parsed[0].dev.major == 7 && parsed[0].dev.minor == 0);
    check(parsed[0].fstype == "ext4");
    return 0;
}
