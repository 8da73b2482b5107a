// Holds the `top --json` contract of docs/top-json.md.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/exact_names.h"
#include "views/json_report.h"

using namespace diskwatch;

namespace {

WriteReport sample_report()
{
    WriteReport report;
    report.ts = 1795000000.5;
    report.interval_s = 5.0;
    report.by = GroupBy::process;
    ReportRow row;
    row.pid = 4242;
    row.comm = "suricata";
    row.cgroup_id = 77;
    row.cgroup = "/system.slice/suricata.service";
    row.mount = "/var/log";
    row.dev = "8:1";
    row.fstype = "ext4";
    row.write_bytes = 67108864;
    row.write_bps = 13421772.8;
    row.total_bytes = 67108864;
    report.rows.push_back(row);
    MountReport mount;
    mount.mount = "/var/log";
    mount.dev = "8:1";
    mount.fstype = "ext4";
    mount.size_bytes = 1000;
    mount.used_bytes = 800;
    mount.used_pct = 80.0;
    report.mounts.push_back(mount);
    return report;
}

}  // namespace

TEST_CASE("a top --json refresh is one line with the documented keys", "[json][contract]")
{
    const std::string line = to_json_line(sample_report());
    CHECK(line.find('\n') == std::string::npos);
    const auto doc = nlohmann::json::parse(line);
    for (const char *key : {"ts", "interval_s", "by", "rows", "mounts", "drops"})
        CHECK(doc.contains(key));
    CHECK(doc.at("ts") == "2026-11-18T11:06:40.500Z");
    CHECK(doc.at("by") == "process");
    const auto &row = doc.at("rows").at(0);
    for (const char *key : {"pid", "comm", "cgroup_id", "cgroup", "mount", "dev", "write_bytes", "write_bps",
                            "total_bytes", "exited", "processes", "nospace_failures", "total_nospace_failures"})
        CHECK(row.contains(key));
    CHECK(row.at("nospace_failures") == 0);  // a number, never null: 0 when the writer never hit a full disk
    CHECK(row.at("write_bytes") == 67108864);
    const auto &mount = doc.at("mounts").at(0);
    for (const char *key : {"mount", "dev", "fstype", "size_bytes", "used_bytes", "used_pct", "write_bps",
                            "eta_full_s", "nospace_failures", "total_nospace_failures"})
        CHECK(mount.contains(key));
    CHECK(mount.at("eta_full_s").is_null());  // not filling
}

TEST_CASE("hostile names are escaped, never break or forge a JSON line", "[json][security]")
{
    auto report = sample_report();
    report.rows[0].comm = "evil\"}\n{\"pid\":1,\\\x1b[31m";
    report.rows[0].cgroup = "bad\xff\xfeutf8";
    const std::string line = to_json_line(report);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\x1b') == std::string::npos);
    const auto doc = nlohmann::json::parse(line);
    CHECK(doc.at("rows").size() == 1);
    CHECK(doc.at("rows").at(0).at("comm") == "evil\"}\n{\"pid\":1,\\\x1b[31m");  // round-trips exactly
    CHECK(doc.at("rows").at(0).at("cgroup") == "bad\xef\xbf\xbd\xef\xbf\xbdutf8");  // U+FFFD for bad bytes
    CHECK(doc.at("rows").at(0).at("cgroup_b64") == "YmFk//51dGY4");  // ... and the exact bytes
    CHECK_FALSE(doc.at("rows").at(0).contains("comm_b64"));          // valid UTF-8 needs none
}

namespace {

}  // namespace

TEST_CASE("every name round-trips byte for byte, and the line is printable ASCII", "[json][security]")
{
    const std::string name = GENERATE(as<std::string>{}, "", "a", "ab", "abc", "plain-name", "caf\xc3\xa9",
                                      "\xff", "\xc3", "\xc3(", "\xed\xa0\x80surrogate", "\xc0\xafoverlong",
                                      "\xf4\x90\x80\x80" "big", std::string("nul\0inside", 10),
                                      "\x1b]52;c;aGk=\x07", "\x1b[2J\x1b[H", "\xc2\x9b" "31m c1-csi", "del\x7f",
                                      "\"}\n{\"pid\":1", "back\\slash\\x1b", "{braces}");
    auto report = sample_report();
    report.rows[0].comm = name;
    report.rows[0].exe = "/opt/" + name;
    report.rows[0].cgroup = "/" + name;
    report.rows[0].mount = "/mnt/" + name;
    report.mounts[0].mount = "/mnt/" + name;
    const std::string line = to_json_line(report);
    for (char c : line) {
        INFO("byte " << static_cast<int>(static_cast<unsigned char>(c)) << " in " << line);
        REQUIRE(c >= 0x20);
        REQUIRE(c < 0x7f);
    }
    const auto doc = nlohmann::json::parse(line);
    REQUIRE(doc.at("rows").size() == 1);
    const auto &exact = diskwatch::test::exact_name;
    const auto &row = doc.at("rows").at(0);
    CHECK(exact(row, "comm") == name);
    CHECK(exact(row, "exe") == "/opt/" + name);
    CHECK(exact(row, "cgroup") == "/" + name);
    CHECK(exact(row, "mount") == "/mnt/" + name);
    CHECK(exact(doc.at("mounts").at(0), "mount") == "/mnt/" + name);
    // _b64 appears exactly when the string alone would lose bytes.
    CHECK(row.contains("comm_b64") == (row.at("comm").get<std::string>() != name));
}

TEST_CASE("rows carry growth, unit, container and files, mounts carry growth (docs/top-json.md)",
          "[json][contract][growth]")
{
    auto report = sample_report();
    ReportRow &row = report.rows[0];
    row.growth_bytes = 1 << 20;
    row.growth_bps = 209715.2;
    row.total_growth_bytes = 2 << 20;
    row.unit = "docker-abc.scope";
    row.container = std::string(64, 'a');
    row.container_name = "suricata-sensor";
    row.container_runtime = "docker";
    row.files = {{"/var/log/suricata/eve.json", 131, true, 4096}, {"", 77, false, 0}};
    report.mounts[0].growth_bytes = 1 << 20;
    report.mounts[0].growth_bps = 209715.2;
    const auto doc = nlohmann::json::parse(to_json_line(report));
    const auto &r = doc.at("rows").at(0);
    CHECK(r.at("growth_bytes") == 1 << 20);
    CHECK(r.at("growth_bps").get<double>() == Approx(209715.2));
    CHECK(r.at("total_growth_bytes") == 2 << 20);
    CHECK(r.at("unit") == "docker-abc.scope");
    CHECK(r.at("container").at("id") == std::string(64, 'a'));
    CHECK(r.at("container").at("name") == "suricata-sensor");
    CHECK(r.at("container").at("runtime") == "docker");
    REQUIRE(r.at("files").size() == 2);
    CHECK(r.at("files").at(0).at("path") == "/var/log/suricata/eve.json");
    CHECK(r.at("files").at(0).at("deleted") == true);
    CHECK(r.at("files").at(0).at("ino") == 131);
    CHECK(r.at("files").at(1).at("path").is_null());  // written, no longer open: inode only
    const auto &m = doc.at("mounts").at(0);
    CHECK(m.at("growth_bytes") == 1 << 20);
    CHECK(m.at("growth_bps").get<double>() == Approx(209715.2));
    // Unknown who: null, never an empty string.
    const auto plain = nlohmann::json::parse(to_json_line(sample_report())).at("rows").at(0);
    CHECK(plain.at("unit").is_null());
    CHECK(plain.at("container").is_null());
    CHECK(plain.at("files").empty());
}

TEST_CASE("source and agent_action are in every refresh (docs/top-json.md)", "[json][contract]")
{
    WriteReport report = sample_report();
    auto doc = nlohmann::json::parse(to_json_line(report));
    CHECK(doc.at("source") == "local");
    CHECK(doc.at("rows").at(0).at("agent_action").is_null());
    CHECK(doc.at("rows").at(0).contains("total_write_calls"));
    report.source = ReportSource::agent;
    report.rows[0].agent_action = "throttle";
    doc = nlohmann::json::parse(to_json_line(report));
    CHECK(doc.at("source") == "agent");
    CHECK(doc.at("rows").at(0).at("agent_action") == "throttle");
}

TEST_CASE("a refresh read back from JSON (a snapshot from the agent) keeps every field and exact name",
          "[json][attach]")
{
    WriteReport report = sample_report();
    ReportRow &row = report.rows[0];
    row.comm = std::string("evil\x1b[2J\xff\xfe", 9);  // an escape sequence and bytes that are not UTF-8
    row.cgroup = "/kubepods/\"quoted\"\n";
    row.exe = "/usr/bin/ok";
    row.total_write_calls = 17;
    row.write_calls = 3;
    row.total_growth_bytes = 4096;
    row.nospace_failures = 5;
    row.total_nospace_failures = 1ull << 40;  // beyond 32 bits: a writer that kept trying for long
    row.unit = "suricata.service";
    row.container = std::string(64, 'a');
    row.container_runtime = "docker";
    row.files.push_back({"/var/log/x\xff.log", 12, true, 4096});
    report.mounts[0].fill_bps = 12.5;
    report.mounts[0].nospace_failures = 5;
    report.mounts[0].total_nospace_failures = 9;
    report.drops.ringbuf_full = 3;
    const WriteReport back = report_from_json(nlohmann::json::parse(to_json_line(report)));
    REQUIRE(back.rows.size() == 1);
    const ReportRow &got = back.rows[0];
    CHECK(got.comm == row.comm);
    CHECK(got.cgroup == row.cgroup);
    CHECK(got.exe == row.exe);
    CHECK(got.pid == 4242);
    CHECK(got.dev == "8:1");
    CHECK(got.kernel_dev == ((8u << 20) | 1u));
    CHECK(got.write_bytes == row.write_bytes);
    CHECK(got.total_bytes == row.total_bytes);
    CHECK(got.write_calls == 3);
    CHECK(got.total_write_calls == 17);
    CHECK(got.total_growth_bytes == 4096);
    CHECK(got.nospace_failures == 5);
    CHECK(got.total_nospace_failures == 1ull << 40);
    CHECK(got.unit == "suricata.service");
    CHECK(got.container == row.container);
    CHECK(got.container_runtime == "docker");
    REQUIRE(got.files.size() == 1);
    CHECK(got.files[0].path == row.files[0].path);
    CHECK(got.files[0].deleted);
    REQUIRE(back.mounts.size() == 1);
    CHECK(back.mounts[0].fill_bps == 12.5);
    CHECK(back.mounts[0].nospace_failures == 5);
    CHECK(back.mounts[0].total_nospace_failures == 9);
    CHECK_FALSE(back.mounts[0].eta_full_s);
    CHECK(back.drops.ringbuf_full == 3);
    CHECK(back.by == GroupBy::process);
}

TEST_CASE("a refresh from an agent before nospace_failures existed reads them as 0", "[json][attach]")
{
    auto doc = nlohmann::json::parse(to_json_line(sample_report()));
    auto &row = doc.at("rows").at(0);
    row.erase("nospace_failures");
    row.erase("total_nospace_failures");
    doc.at("mounts").at(0).erase("nospace_failures");
    const WriteReport back = report_from_json(doc);
    REQUIRE(back.rows.size() == 1);
    CHECK(back.rows[0].nospace_failures == 0);
    CHECK(back.rows[0].total_nospace_failures == 0);
    CHECK(back.rows[0].write_bytes == 67108864);
    CHECK(back.mounts.at(0).nospace_failures == 0);
}
