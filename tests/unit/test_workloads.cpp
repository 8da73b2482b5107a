// Who, in words: systemd units and containers named by cgroup paths
// (resolve/workloads.h), on the path forms each runtime and driver makes.
#include <catch2/catch.hpp>

#include "resolve/workloads.h"

using namespace diskwatch;

namespace {
const std::string kId = "4f6a2b1c9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718";
}

TEST_CASE("a systemd service is named by its unit", "[workloads]")
{
    auto w = describe_cgroup("/system.slice/suricata.service");
    CHECK(w.unit == "suricata.service");
    CHECK(w.container_id.empty());
    CHECK(w.runtime.empty());
}

TEST_CASE("the innermost unit wins in a user session", "[workloads]")
{
    auto w = describe_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service");
    CHECK(w.unit == "backup.service");
    CHECK(describe_cgroup("/user.slice/user-1000.slice/session-3.scope").unit == "session-3.scope");
}

TEST_CASE("slices, the root and plain directories name no unit", "[workloads]")
{
    CHECK(describe_cgroup("/").unit.empty());
    CHECK(describe_cgroup("/system.slice").unit.empty());
    CHECK(describe_cgroup("/dw-test-1234").unit.empty());
    CHECK(describe_cgroup("/.service").unit.empty());
}

TEST_CASE("Docker with the systemd driver: docker-<id>.scope", "[workloads]")
{
    auto w = describe_cgroup("/system.slice/docker-" + kId + ".scope");
    CHECK(w.container_id == kId);
    CHECK(w.runtime == "docker");
    CHECK(w.unit == "docker-" + kId + ".scope");
}

TEST_CASE("Docker with the cgroupfs driver: /docker/<id>", "[workloads]")
{
    auto w = describe_cgroup("/docker/" + kId);
    CHECK(w.container_id == kId);
    CHECK(w.runtime == "docker");
    CHECK(w.unit.empty());
}

TEST_CASE("Kubernetes on containerd, systemd driver: the pod uid and the container", "[workloads]")
{
    auto w = describe_cgroup("/kubepods.slice/kubepods-burstable.slice/"
                             "kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-" +
                             kId + ".scope");
    CHECK(w.container_id == kId);
    CHECK(w.runtime == "containerd");
    CHECK(w.pod_uid == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
}

TEST_CASE("Kubernetes, cgroupfs driver, and containerd's nested form", "[workloads]")
{
    auto cgroupfs = describe_cgroup("/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/" + kId);
    CHECK(cgroupfs.container_id == kId);
    CHECK(cgroupfs.runtime == "kubernetes");
    CHECK(cgroupfs.pod_uid == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    auto nested = describe_cgroup("/system.slice/containerd.service/kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8796_"
                                  "a5b4c3d2e1f0.slice:cri-containerd:" + kId);
    CHECK(nested.container_id == kId);
    CHECK(nested.runtime == "containerd");
    CHECK(nested.unit == "containerd.service");
}

TEST_CASE("CRI-O and Podman scopes", "[workloads]")
{
    CHECK(describe_cgroup("/kubepods.slice/crio-" + kId + ".scope").runtime == "cri-o");
    auto podman = describe_cgroup("/machine.slice/libpod-" + kId + ".scope");
    CHECK(podman.runtime == "podman");
    CHECK(podman.container_id == kId);
}

TEST_CASE("something that only looks like an id is not a container", "[workloads]")
{
    CHECK(describe_cgroup("/docker/" + kId.substr(1)).container_id.empty());       // 63 digits
    CHECK(describe_cgroup("/docker/" + kId.substr(1) + "g").container_id.empty());  // not hex
    CHECK(describe_cgroup("/system.slice/docker-abc.scope").container_id.empty());
}

TEST_CASE("Docker's container name is read from config.v2.json on disk", "[workloads]")
{
    ContainerNames names(std::string(DW_FIXTURES_DIR) + "/docker");
    CHECK(names.name_of(kId) == std::optional<std::string>("suricata-sensor"));
    CHECK_FALSE(names.name_of(std::string(64, 'a')).has_value());
    CHECK_FALSE(names.name_of("").has_value());
    CHECK_FALSE(ContainerNames("/nonexistent-docker-root").name_of(kId).has_value());
}

TEST_CASE("the outermost container in a cgroup path is the container: one nested inside it, named after another, "
          "is still the first one's",
          "[workloads][security]")
{
    const std::string a(64, 'a');
    const std::string b(64, 'b');
    auto cgroupfs = describe_cgroup("/docker/" + b + "/" + a);
    CHECK(cgroupfs.container_id == b);
    CHECK(cgroupfs.container_cgroup == "/docker/" + b);
    auto systemd = describe_cgroup("/system.slice/docker-" + b + ".scope/docker-" + a + ".scope");
    CHECK(systemd.container_id == b);
    CHECK(systemd.container_cgroup == "/system.slice/docker-" + b + ".scope");
    auto delegated = describe_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/docker-" + a + ".scope");
    CHECK(delegated.container_id == a);  // what the path says; its owner decides whether it is named
    CHECK(delegated.container_cgroup == "/user.slice/user-1000.slice/user@1000.service/app.slice/docker-" + a + ".scope");
}
