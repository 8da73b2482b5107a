// The control socket's requests and who may send them (docs/control.md).
#include <unistd.h>

#include <catch2/catch.hpp>

#include "control/control_protocol.h"
#include "control/control_server.h"

using namespace diskwatch;
using namespace diskwatch::control;

TEST_CASE("requests are checked for shape before any handler sees them", "[control]")
{
    std::string error;
    CHECK(validate_request(status_request(), &error));
    CHECK(validate_request(release_request("4242"), &error));
    CHECK(validate_request(snapshot_request("cgroup"), &error));
    CHECK(validate_request(nlohmann::json {{"cmd", "snapshot"}}, &error));

    CHECK_FALSE(validate_request(nlohmann::json::array(), &error));
    CHECK_THAT(error, Catch::Contains("object"));
    CHECK_FALSE(validate_request(nlohmann::json {{"command", "status"}}, &error));
    CHECK_THAT(error, Catch::Contains("cmd"));
    CHECK_FALSE(validate_request(nlohmann::json {{"cmd", "release"}}, &error));
    CHECK_THAT(error, Catch::Contains("target"));
    CHECK_FALSE(validate_request(nlohmann::json {{"cmd", "release"}, {"target", 42}}, &error));
    CHECK(validate_request(release_request("4242", 600), &error));
    CHECK(release_request("4242", 600)["for_s"] == 600.0);
    CHECK_FALSE(release_request("4242").contains("for_s"));
    for (const auto &bad : {nlohmann::json(-1), nlohmann::json(8 * 24 * 3600), nlohmann::json("10m")}) {
        CHECK_FALSE(validate_request(nlohmann::json {{"cmd", "release"}, {"target", "1"}, {"for_s", bad}}, &error));
        CHECK_THAT(error, Catch::Contains("for_s"));
    }
    CHECK_FALSE(validate_request(snapshot_request("disk"), &error));
    CHECK_THAT(error, Catch::Contains("process, cgroup or mount"));
}

TEST_CASE("an act request names its action and target, a throttle its rate, and who asks is short text", "[control][act]")
{
    std::string error;
    CHECK(validate_request(act_request("throttle", "4242", 1 << 20), &error));
    CHECK(act_request("throttle", "4242", 1 << 20)["rate_bps"] == 1048576.0);
    CHECK(act_request("kill", "/system.slice/x.service")["requested_by"] == "top");
    CHECK_FALSE(act_request("kill", "4242").contains("rate_bps"));
    CHECK(validate_request(act_request("kill", "4242"), &error));
    CHECK(validate_request(act_request("protect", "/jobs"), &error));
    CHECK(validate_request(act_request("release", "4242", 0, 600), &error));
    CHECK(act_request("release", "4242", 0, 600)["for_s"] == 600.0);

    CHECK_FALSE(validate_request(act_request("freeze", "4242"), &error));
    CHECK_THAT(error, Catch::Contains("throttle, kill, release or protect"));
    CHECK_FALSE(validate_request(nlohmann::json {{"cmd", "act"}, {"action", "kill"}}, &error));
    CHECK_THAT(error, Catch::Contains("target"));
    for (const auto &bad : {nlohmann::json(0), nlohmann::json(-5), nlohmann::json(2e12), nlohmann::json("1M"),
                            nlohmann::json(nullptr)}) {
        auto request = act_request("throttle", "1", 1);
        request["rate_bps"] = bad;
        CHECK_FALSE(validate_request(request, &error));
        CHECK_THAT(error, Catch::Contains("rate_bps"));
    }
    auto no_rate = act_request("throttle", "1", 1);
    no_rate.erase("rate_bps");
    CHECK_FALSE(validate_request(no_rate, &error));
    auto long_by = act_request("kill", "1");
    long_by["requested_by"] = std::string(100, 'x');
    CHECK_FALSE(validate_request(long_by, &error));
    CHECK_THAT(error, Catch::Contains("requested_by"));
    auto bad_for = act_request("release", "1");
    bad_for["for_s"] = 1e9;
    CHECK_FALSE(validate_request(bad_for, &error));
    CHECK_THAT(error, Catch::Contains("for_s"));
}

TEST_CASE("root and the agent's own uid are allowed, others only through the configured group", "[control]")
{
    std::string why;
    CHECK(peer_allowed({1, 0, 0}, std::nullopt, &why));
    CHECK(peer_allowed({1, ::geteuid(), 0}, std::nullopt, &why));
    if (::geteuid() != 65534) {
        // pid 0 has no /proc entry: only the primary gid can match.
        CHECK_FALSE(peer_allowed({0, 65534, 65534}, std::nullopt, &why));
        CHECK_THAT(why, Catch::Contains("uid 65534"));
        CHECK(peer_allowed({0, 65534, 4242}, gid_t(4242), &why));
        CHECK_FALSE(peer_allowed({0, 65534, 65534}, gid_t(4242), &why));
        CHECK_THAT(why, Catch::Contains("group 4242"));
    }
}
