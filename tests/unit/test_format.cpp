#include <catch2/catch.hpp>

#include <algorithm>

#include "views/format.h"
#include "views/text_report.h"

using namespace diskwatch;

TEST_CASE("byte counts and rates read like iotop's", "[format]")
{
    CHECK(human_bytes(0) == "0B");
    CHECK(human_bytes(1023) == "1023B");
    CHECK(human_bytes(1536) == "1.50K");
    CHECK(human_bytes(64.0 * 1024 * 1024) == "64.0M");
    CHECK(human_bytes(379.0 * 1024 * 1024 * 1024) == "379G");
    CHECK(human_rate(50.0 * 1024 * 1024) == "50.0M/s");
}

TEST_CASE("durations are short and '-' when unknown", "[format]")
{
    CHECK(human_duration(std::nullopt) == "-");
    CHECK(human_duration(42.9) == "42s");
    CHECK(human_duration(3 * 60 + 5) == "3m05s");
    CHECK(human_duration(2 * 3600 + 30 * 60) == "2h30m");
    CHECK(human_duration(3 * 86400 + 3600) == "3d1h");
}

TEST_CASE("timestamps are RFC 3339 UTC with milliseconds", "[format]")
{
    CHECK(rfc3339_utc(0.25) == "1970-01-01T00:00:00.250Z");
    CHECK(rfc3339_utc(1795000000.5) == "2026-11-18T11:06:40.500Z");
}

TEST_CASE("hostile names never reach the terminal raw", "[format][security]")
{
    CHECK(terminal_safe("suricata") == "suricata");
    CHECK(terminal_safe("caf\xc3\xa9") == "caf\xc3\xa9");              // valid UTF-8 stays
    CHECK(terminal_safe("\x1b[2Jgone") == "\\x1b[2Jgone");            // ESC
    CHECK(terminal_safe("a\nb\tc\r") == "a\\x0ab\\x09c\\x0d");        // line breaks cannot fake rows
    CHECK(terminal_safe("\xc2\x9b" "31m") == "\\xc2\\x9b31m");         // C1 CSI encoded as UTF-8
    CHECK(terminal_safe("bad\xff\xfe") == "bad\\xff\\xfe");            // not UTF-8
    CHECK(terminal_safe("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");         // overlong
    CHECK(terminal_safe("\x7f") == "\\x7f");
    CHECK(terminal_safe("\\x1b[2J") == "\\\\x1b[2J");  // typed, not an ESC: looks different
}

TEST_CASE("long paths keep their end when cut to a column", "[format]")
{
    CHECK(fit_path("/var/log", 20) == "/var/log");
    CHECK(fit_path("/tmp/dw-loop-XAbPGd/mnt", 13) == "...XAbPGd/mnt");
    CHECK(fit_path("/tmp/dw-loop-XAbPGd/mnt", 12).size() == 12);
    CHECK(fit_path("/x/caf\xc3\xa9", 5) == "...\xc3\xa9");  // never half a character
}

TEST_CASE("the top -b text table never carries a name's control bytes or extra lines", "[format][security]")
{
    const auto table_for = [](const std::string &name) {
        WriteReport report;
        ReportRow row;
        row.pid = 7;
        row.comm = name;
        row.cgroup = "/" + name;
        row.mount = "/mnt/" + name;
        row.write_bytes = 1;
        report.rows.push_back(row);
        MountReport mount;
        mount.mount = "/mnt/" + name;
        report.mounts.push_back(mount);
        return to_text_table(report);
    };
    const std::string plain = table_for("plain");
    const std::string name = GENERATE(as<std::string>{}, "q\"b\\s{}\n\r", "\x1b[2J\x1b[H", "\x1b]52;c;aGk=\x07",
                                      "\xc2\x9b" "31m", "\xff\xfe", "a\nfake row",
                                      std::string(1500, '\xff'));  // longer than any line buffer, once escaped
    const std::string table = table_for(name);
    CHECK(std::count(table.begin(), table.end(), '\n') == std::count(plain.begin(), plain.end(), '\n'));
    for (char c : table) {
        INFO("byte " << static_cast<int>(static_cast<unsigned char>(c)));
        CHECK((c == '\n' || static_cast<unsigned char>(c) >= 0x20));
        CHECK(c != 0x7f);
    }
    CHECK(table.find("\xc2\x9b") == std::string::npos);
}

TEST_CASE("the top -b text table says who keeps being refused on a full disk, only then", "[format][nospace]")
{
    WriteReport report;
    ReportRow row;
    row.pid = 7;
    row.comm = "logger";
    row.mount = "/var/log";
    report.rows.push_back(row);
    CHECK(to_text_table(report).find("disk full") == std::string::npos);
    report.rows[0].nospace_failures = 12;
    report.rows[0].total_nospace_failures = 40;
    CHECK(to_text_table(report).find("disk full: 12 writes refused (40 in all)") != std::string::npos);
}
