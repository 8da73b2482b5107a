// `ebpf-diskwatch doctor` on the real kernel (docs/cli.md).
#include <cstdio>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/scratch.h"
#include "support/spawn.h"

using namespace diskwatch::test;

TEST_CASE("doctor names the hooks it attaches and exits 0 here", "[doctor][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    auto doctor = ChildProcess::start({DW_BINARY, "doctor"});
    auto status = doctor.wait(std::chrono::seconds(60));
    INFO(doctor.out() << doctor.err());
    REQUIRE(status == 0);
    CHECK_THAT(doctor.out(), Catch::Contains("would attach"));
    CHECK_THAT(doctor.out(), Catch::Contains("attached    dw_"));
    CHECK_THAT(doctor.out(), Catch::Contains("ok: ebpf-diskwatch can run here"));
}

TEST_CASE("doctor --json records kernel, features and the chosen hooks", "[doctor][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    auto doctor = ChildProcess::start({DW_BINARY, "doctor", "--json"});
    auto status = doctor.wait(std::chrono::seconds(60));
    INFO(doctor.out() << doctor.err());
    REQUIRE(status == 0);
    const auto doc = nlohmann::json::parse(doctor.out());
    CHECK(doc.at("ok") == true);
    CHECK_FALSE(doc.at("kernel").get<std::string>().empty());
    CHECK(doc.at("btf") == true);
    CHECK(doc.at("ringbuf").at("available") == true);
    const std::string chosen = doc.at("chosen_hooks");
    CHECK(doc.at("hooks").at(chosen).at("available") == true);
    // The cheapest available family is the one chosen.
    for (const char *cheaper : {"fentry", "tp_btf", "raw_tp"}) {
        if (chosen == cheaper)
            break;
        CHECK(doc.at("hooks").at(cheaper).at("available") == false);
    }
    CHECK_FALSE(doc.at("programs").empty());
    CHECK(doc.at("cgroup2").at("mount").is_string());
    // The tp_btf hook reads struct file with direct loads where the kernel
    // has bpf_rdonly_cast (6.2+): these machines run 6.18.
    int major = 0, minor = 0;
    REQUIRE(std::sscanf(doc.at("kernel").get<std::string>().c_str(), "%d.%d", &major, &minor) == 2);
    const bool has_rdonly_cast = major > 6 || (major == 6 && minor >= 2);
    CHECK(doc.at("typed_file_reads") == (chosen == "tp_btf" && has_rdonly_cast));
}

TEST_CASE("doctor --hooks forces a family and reports it", "[doctor][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    auto doctor = ChildProcess::start({DW_BINARY, "doctor", "--json", "--hooks", "raw_tp"});
    auto status = doctor.wait(std::chrono::seconds(60));
    INFO(doctor.out() << doctor.err());
    REQUIRE(status == 0);
    const auto doc = nlohmann::json::parse(doctor.out());
    CHECK(doc.at("chosen_hooks") == "raw_tp");
    CHECK(doc.at("reason") == "forced by --hooks");
    CHECK(doc.at("typed_file_reads") == false);  // raw_tp has no BTF types to read through
}

namespace {

int bpf_stats_sysctl()
{
    std::ifstream in("/proc/sys/kernel/bpf_stats_enabled");
    int value = -1;
    in >> value;
    return value;
}

}  // namespace

TEST_CASE("doctor --stats reports each program's run count and ns/run, then turns bpf_stats back off",
          "[doctor][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    const int before = bpf_stats_sysctl();
    TmpfsMount disk(16 * 1024);
    auto doctor = ChildProcess::start({DW_BINARY, "doctor", "--json", "--stats", "--stats-seconds", "3"});
    // Writes while the window is open: 8 s of paced 4 KiB pwrites (512 a
    // second), longer than doctor's load and its 3 s window together, so the
    // window sees hundreds of them however slowly doctor starts.
    auto writer = ChildProcess::start({DW_TEST_WRITER, "--mode", "pwrite64", "--file", disk.path() + "/stats",
                                       "--bytes", std::to_string(16 << 20), "--chunk", "4096", "--rate",
                                       std::to_string(2 << 20)});
    auto status = doctor.wait(std::chrono::seconds(60));
    writer.wait(std::chrono::seconds(30));
    INFO(doctor.out() << doctor.err());
    REQUIRE(status == 0);
    const auto doc = nlohmann::json::parse(doctor.out());
    const auto &stats = doc.at("stats");
    CHECK(stats.at("error").is_null());
    CHECK(stats.at("window_s").get<double>() >= 2.9);
    CHECK(stats.at("bpf_stats_enabled_after") == stats.at("bpf_stats_enabled_before"));
    CHECK(bpf_stats_sysctl() == before);
    REQUIRE(stats.at("programs").size() == doc.at("programs").size());
    // The write hook ran (it sees every write on the machine, ours included)
    // and its time was counted.
    const std::string attached = doc.at("programs").at(0);  // "dw_sys_exit_btf (tp_btf/sys_exit)"
    const std::string hook = attached.substr(0, attached.find(' '));
    bool found = false;
    for (const auto &program : stats.at("programs")) {
        if (program.at("program") != hook)
            continue;
        found = true;
        CHECK(program.at("run_cnt").get<uint64_t>() >= 100);
        CHECK(program.at("run_time_ns").get<uint64_t>() > 0);
        CHECK(program.at("ns_per_run").get<double>() > 0);
    }
    CHECK(found);
}
