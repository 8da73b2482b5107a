// libFuzzer target (docs/security.md, row 1-6): any bytes as a name, the
// properties that keep hostile names harmless.
//   - top --json: the line is printable ASCII, one JSON object, and every name
//     round-trips exactly (the string, or `<key>_b64` when not UTF-8).
//   - the terminal form (terminal_safe): no C0/C1 control and no DEL reaches
//     the terminal, and the result is valid UTF-8; the `top -b` table has no
//     control byte but its own line ends, and no extra line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.h"
#include "support/exact_names.h"
#include "views/format.h"
#include "views/json_report.h"
#include "views/text_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string name(reinterpret_cast<const char *>(data), size);

    diskwatch::WriteReport report;
    diskwatch::ReportRow row;
    row.comm = name;
    row.exe = name;
    row.cgroup = name;
    row.mount = name;
    report.rows.push_back(row);
    diskwatch::MountReport mount;
    mount.mount = name;
    report.mounts.push_back(mount);
    const std::string line = diskwatch::to_json_line(report);
    for (char c : line)
        check(c >= 0x20 && c < 0x7f);
    const auto doc = nlohmann::json::parse(line);
    check(doc.at("rows").size() == 1);
    for (const char *key : {"comm", "exe", "cgroup", "mount"})
        check(diskwatch::test::exact_name(doc.at("rows").at(0), key) == name);
    check(diskwatch::test::exact_name(doc.at("mounts").at(0), "mount") == name);

    const std::string table = diskwatch::to_text_table(report);
    for (char c : table)
        check(c == '\n' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
    diskwatch::WriteReport plain = report;
    plain.rows[0].comm = plain.rows[0].exe = plain.rows[0].cgroup = plain.rows[0].mount = "x";
    plain.mounts[0].mount = "x";
    const std::string plain_table = diskwatch::to_text_table(plain);
    check(std::count(table.begin(), table.end(), '\n') == std::count(plain_table.begin(), plain_table.end(), '\n'));

    const std::string shown = diskwatch::terminal_safe(name);
    check(diskwatch::is_valid_utf8(shown));
    for (size_t i = 0; i < shown.size(); ++i) {
        const auto c = static_cast<unsigned char>(shown[i]);
        check(c >= 0x20 && c != 0x7f);
        // C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8.
        check(!(c == 0xc2 && i + 1 < shown.size() && static_cast<unsigned char>(shown[i + 1]) <= 0x9f));
    }
    return 0;
}
