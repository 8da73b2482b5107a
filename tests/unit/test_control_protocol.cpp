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
