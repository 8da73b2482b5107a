// The vocabulary every folder shares (userspace/vocabulary/): the drop-reason
// table, the one cgroup path -> unit/container derivation, the errno text.
#include <catch2/catch.hpp>

#include <cerrno>
#include <set>
#include <string>

#include "aggregate/write_report.h"
#include "events/events.h"
#include "views/json_report.h"
#include "views/text_report.h"
#include "vocabulary/cgroup_workload.h"
#include "vocabulary/drop_reasons.h"
#include "vocabulary/errno_text.h"

using namespace diskwatch;

namespace {
const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kOther = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
}  // namespace

// ---- drop reasons --------------------------------------------------------

// The build already refuses a table that misses or repeats a DW_ERR_*
// (drop_reasons.h); these say the same at run time, and what the views do.
static_assert(drop_table_checks::covers_every_error_once());
static_assert(drop_table_checks::unique_and_named());

TEST_CASE("the drop-reason table covers every DW_ERR_* exactly once", "[vocabulary]")
{
    for (uint32_t index = 0; index < DW_ERR_COUNT; ++index) {
        int rows = 0;
        for (const auto &reason : kDropReasons)
            rows += (reason.dw_errors & dw_error_bit(index)) ? 1 : 0;
        INFO("DW_ERR index " << index);
        CHECK(rows == 1);
    }
    // Both ways a throttled writer escapes its stop are one public reason.
    const auto &last = kDropReasons[kDropReasonCount - 1];
    CHECK(last.name == "throttle_not_stopped");
    CHECK(last.dw_errors == (dw_error_bit(DW_ERR_THROTTLE_RECORD) | dw_error_bit(DW_ERR_THROTTLE_SIGNAL)));
}

TEST_CASE("drop reasons keep today's names, once each, in the contract's order", "[vocabulary]")
{
    // docs/top-json.md, docs/control.md, docs/metrics.md name them in this order.
    const std::vector<std::string> contract = {"writers_map_full", "ringbuf_full",       "file_lookup",
                                               "pairing_map_full", "aio_events_skipped", "aio_event_read",
                                               "rate_bucket_full", "throttle_not_stopped"};
    REQUIRE(kDropReasonCount == contract.size());
    std::set<std::string> names, labels, helps;
    for (size_t i = 0; i < kDropReasonCount; ++i) {
        CHECK(std::string(kDropReasons[i].name) == contract[i]);
        names.insert(std::string(kDropReasons[i].name));
        labels.insert(std::string(kDropReasons[i].label));
        helps.insert(std::string(kDropReasons[i].help));
    }
    CHECK(names.size() == kDropReasonCount);
    CHECK(labels.size() == kDropReasonCount);
    CHECK(helps.size() == kDropReasonCount);
}

TEST_CASE("every drop reason shows in every view", "[vocabulary]")
{
    for (const auto &reason : kDropReasons)
        CHECK(reason.views == kDropViewAll);
    DropCounters drops;
    uint64_t value = 1;
    for (const auto &reason : kDropReasons)
        drops.*reason.counter = value++;
    CHECK(total_drops(drops) == kDropReasonCount * (kDropReasonCount + 1) / 2);

    const auto json = drops_json(drops);
    REQUIRE(json.size() == kDropReasonCount);
    WriteReport report;
    report.drops = drops;
    const std::string text = to_text_table(report, 0);
    for (const auto &reason : kDropReasons) {
        INFO(reason.name);
        CHECK(json.at(std::string(reason.name)) == drops.*reason.counter);
        CHECK(text.find(std::string(reason.name) + "=" + std::to_string(drops.*reason.counter)) != std::string::npos);
    }
    // And back: top attached to an agent reads every one of them.
    const auto back = report_from_json(to_json(report));
    for (const auto &reason : kDropReasons)
        CHECK(back.drops.*reason.counter == drops.*reason.counter);
}

TEST_CASE("the text view says nothing of drops while there are none", "[vocabulary]")
{
    WriteReport report;
    CHECK(to_text_table(report, 0).find("dropped") == std::string::npos);
    report.drops.aio_event_read = 2;
    const std::string text = to_text_table(report, 0);
    CHECK(text.find("dropped: aio_event_read=2\n") != std::string::npos);
}

// ---- errno text ----------------------------------------------------------

TEST_CASE("errno text: words and number, either sign", "[vocabulary]")
{
    CHECK(errno_text(ENOENT) == "No such file or directory (errno 2)");
    CHECK(errno_text(-EPERM) == "Operation not permitted (errno 1)");
    CHECK(errno_text(100000).find("(errno 100000)") != std::string::npos);
}

// ---- cgroup path -> unit, container --------------------------------------

TEST_CASE("derivation: systemd units", "[vocabulary]")
{
    CHECK(describe_cgroup("/system.slice/nginx.service").unit == "nginx.service");
    CHECK(describe_cgroup("/user.slice/user-1000.slice/session-2.scope").unit == "session-2.scope");
    CHECK(describe_cgroup("/system.slice/foo.socket").unit == "foo.socket");
    CHECK(describe_cgroup("/").unit.empty());
    CHECK(describe_cgroup("").unit.empty());
    CHECK(describe_cgroup("/system.slice/nginx.service").container_id.empty());
}

TEST_CASE("derivation: docker, libpod, cri-o, containerd scopes and the cgroupfs driver", "[vocabulary]")
{
    const auto docker = describe_cgroup("/system.slice/docker-" + kId + ".scope");
    CHECK(docker.unit == "docker-" + kId + ".scope");
    CHECK(docker.container_id == kId);
    CHECK(docker.runtime == "docker");
    CHECK(describe_cgroup("/machine.slice/libpod-" + kId + ".scope").runtime == "podman");
    CHECK(describe_cgroup("/machine.slice/libpod-" + kId + ".scope").container_id == kId);
    CHECK(describe_cgroup("/kubepods.slice/crio-" + kId + ".scope").runtime == "cri-o");
    CHECK(describe_cgroup("/kubepods.slice/kubepods-pod.slice/cri-containerd-" + kId + ".scope").runtime == "containerd");
    CHECK(describe_cgroup("/docker/" + kId).container_id == kId);
    CHECK(describe_cgroup("/docker/" + kId).runtime == "docker");
    CHECK(describe_cgroup("/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/" + kId).runtime == "kubernetes");
}

TEST_CASE("derivation: nested paths, the innermost unit and the outermost container", "[vocabulary]")
{
    const auto nested = describe_cgroup("/system.slice/docker-" + kOther + ".scope/docker-" + kId + ".scope");
    CHECK(nested.container_id == kOther);  // a sub-cgroup cannot claim another container
    CHECK(nested.container_cgroup == "/system.slice/docker-" + kOther + ".scope");
    CHECK(nested.unit == "docker-" + kId + ".scope");
    CHECK(describe_cgroup("/docker/" + kOther + "/" + kId).container_id == kOther);
    CHECK(describe_cgroup("/system.slice/app.service/worker").unit == "app.service");
}

TEST_CASE("derivation: hostile paths name nothing they do not hold", "[vocabulary]")
{
    CHECK(describe_cgroup("/docker/" + kId.substr(1)).container_id.empty());  // 63 digits
    std::string upper = kId;
    upper[0] = 'A';
    CHECK(describe_cgroup("/docker/" + upper).container_id.empty());  // ids are lower-case hex
    CHECK(describe_cgroup("/docker/" + kId + "0").container_id.empty());  // 65 digits
    CHECK(describe_cgroup("/.service").unit.empty());
    CHECK(describe_cgroup("/a/../docker-" + kId + ".scope").container_id == kId);  // a name, not resolved
    CHECK(describe_cgroup("////docker////" + kId + "////").container_id == kId);
    CHECK(describe_cgroup(std::string("/docker/\0", 9) + kId).container_id.empty());  // a NUL is part of the name
    CHECK(describe_cgroup(std::string(100000, '/')).unit.empty());
    // A prefix inside a name is not the runtime's (the old event regex took it).
    CHECK(describe_cgroup("/system.slice/evil-docker-" + kId + ".scope").container_id.empty());
}

// Where the old event code (a leaf-only unit and a regex for the container,
// events.cpp until the one derivation) said something else. The event tests
// (tests/unit/test_events.cpp, the integration event tests) assert none of
// these inputs; events now name what top's rows always named, as
// docs/events.md says ("innermost systemd unit in the path").
TEST_CASE("events and top's rows derive a cgroup path alike (cases the old event code differed on)", "[vocabulary][events]")
{
    struct Case {
        std::string path;
        std::string unit, container;  // now, in both
        std::string old_unit, old_container;  // the old event code's
    };
    const Case cases[] = {
        // A service's sub-cgroup: the old code read only the last component.
        {"/system.slice/app.service/worker", "app.service", "", "", ""},
        // A slice is no unit a process runs in; the old code took it.
        {"/system.slice", "", "", "system.slice", ""},
        // containerd's nested systemd form: the regex wanted a '/' before the id.
        {"/system.slice/containerd.service/kubepods-pod.slice:cri-containerd:" + kId, "containerd.service", kId,
         "", ""},
        // A runtime's prefix inside another name: the regex matched mid-name.
        {"/system.slice/evil-docker-" + kId + ".scope", "evil-docker-" + kId + ".scope", "",
         "evil-docker-" + kId + ".scope", kId},
        // A bare id with .scope: the regex took it; no runtime names it so.
        {"/x/" + kId + ".scope", kId + ".scope", "", kId + ".scope", kId},
    };
    for (const auto &c : cases) {
        INFO(c.path << " (the old event code: unit '" << c.old_unit << "', container '" << c.old_container << "')");
        const auto workload = describe_cgroup(c.path);
        CHECK(workload.unit == c.unit);
        CHECK(workload.container_id == c.container);
        CHECK(unit_of_cgroup(c.path) == c.unit);
        CHECK(container_of_cgroup(c.path) == c.container);
        const auto json = cgroup_json(1, c.path);
        CHECK(json.at("unit") == c.unit);
        CHECK(json.at("container") == c.container);
    }
    // What the event tests assert, unchanged.
    CHECK(cgroup_json(7, "/system.slice/docker-" + kId + ".scope").at("unit") == "docker-" + kId + ".scope");
    CHECK(cgroup_json(7, "/system.slice/docker-" + kId + ".scope").at("container") == kId);
    CHECK(cgroup_json(8, "/system.slice/nginx.service").at("unit") == "nginx.service");
    CHECK(unit_of_cgroup("/").empty());
}

TEST_CASE("derivation: the cgroupfs driver's podman and CRI-O names, and nerdctl's systemd scope", "[vocabulary]")
{
    const std::string id(64, 'c');
    const auto podman = describe_cgroup("/libpod_parent/libpod-" + id);
    CHECK(podman.container_id == id);
    CHECK(podman.runtime == "podman");
    const auto crio = describe_cgroup("/kubepods/burstable/pod0f3c2a7e-5b1d-4c8e-9a6f-1d2e3f4a5b6c/crio-" + id);
    CHECK(crio.container_id == id);
    CHECK(crio.runtime == "cri-o");
    const auto nerdctl = describe_cgroup("/system.slice/nerdctl-" + id + ".scope");
    CHECK(nerdctl.container_id == id);
    CHECK(nerdctl.runtime == "containerd");
    // Not a container: a prefix inside the name, or an id of the wrong length.
    CHECK(describe_cgroup("/libpod_parent/evil-libpod-" + id).container_id.empty());
    CHECK(describe_cgroup("/libpod_parent/libpod-" + id.substr(1)).container_id.empty());
}
