// `ebpf-diskwatch doctor` on the real kernel (docs/cli.md).
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
}
