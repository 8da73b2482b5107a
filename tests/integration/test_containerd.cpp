// containerd's own containers by name (issue #15): a private containerd
// (support/containerd_fixture.h), containers started with `ctr run` as the
// Kubernetes CRI plugin and nerdctl would name them (their annotations in the
// task's OCI spec), in the cgroupfs driver's Kubernetes cgroup form
// /<top>/kubepods/besteffort/pod<uid>/<id>. The agent and top read the names
// from --containerd-state. docs/containers.md.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <thread>

#include "support/agent_run.h"
#include "support/containerd_fixture.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using nlohmann::json;

namespace {

// ~20 MiB/s into the container's own root (the fixture's loop disk) until killed.
const std::string kFlood =
    "while :; do dd if=/dev/zero bs=65536 count=16 2>/dev/null; sleep 0.05; done > /data/flood";

// Waits for the file a container's script touches when it has written.
void wait_done(const ContainerdDaemon &containerd, const ContainerdDaemon::Container &container)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (::access((container.rootfs + "/done").c_str(), F_OK) != 0) {
        INFO("container " << container.id << " did not finish: " << containerd.log());
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        REQUIRE(containerd.pid_of(container) > 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace

TEST_CASE("a containerd container is named from its task's CRI annotations: the agent's events carry its name and "
          "image, and a match.container rule kills it and spares a flooding bystander of another name",
          "[containerd][enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    auto containerd = start_containerd_or_skip();
    if (!containerd)
        return;
    AgentRun agent(PolicyYaml()
                       .interval("250ms")
                       .rule("cd-web-flood")
                       .cgroup_scope()
                       .match("container", {"cd-web-*"})
                       .when("5MiB/s", "1s")
                       .action("kill")
                       .set("kill_grace", "500ms"),
                   {"--containerd-state", containerd->state_dir()});
    INFO(agent.stderr_text());
    REQUIRE(agent.started());

    // What the CRI plugin writes for a pod's container (namespace k8s.io)...
    const auto web = containerd->run("k8s.io",
                                     {{"io.kubernetes.cri.container-type", "container"},
                                      {"io.kubernetes.cri.container-name", "cd-web-1"},
                                      {"io.kubernetes.cri.image-name", "registry.example/shop/web:1.0"},
                                      {"io.kubernetes.cri.sandbox-name", "web-7d4b9"},
                                      {"io.kubernetes.cri.sandbox-namespace", "shop"}},
                                     kFlood);
    // ...and nerdctl for `nerdctl run --name cd-db` (namespace default): the
    // same flood for 5 s, then it stays. Not matched by the rule.
    const auto db = containerd->run(
        "default", {{"nerdctl/name", "cd-db"}, {"nerdctl/namespace", "default"}},
        "i=0; while [ $i -lt 100 ]; do dd if=/dev/zero bs=65536 count=16 2>/dev/null; sleep 0.05; i=$((i+1)); "
        "done > /data/db; exec sleep 600");

    const auto killed = agent.wait_for(
        [&](const json &e) {
            return e.value("event", "") == "action" && e.value("action", "") == "kill" && e.contains("cgroup") &&
                   e["cgroup"].value("container", "") == web.id;
        },
        std::chrono::seconds(30));
    INFO(agent.events_text() << "\ncontainerd: " << containerd->log());
    REQUIRE(killed);
    CHECK((*killed)["protected"] == false);
    CHECK((*killed)["rule"] == "cd-web-flood");
    const json &cgroup = (*killed)["cgroup"];
    CHECK(cgroup["path"] == web.cgroup);
    CHECK(cgroup["container_name"] == "cd-web-1");
    CHECK(cgroup["image"] == "registry.example/shop/web:1.0");
    CHECK(cgroup.value("compose_project", "") == "");

    // The kill took the container (cgroup.kill: its pid-namespace init too).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (containerd->running(web) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK_FALSE(containerd->running(web));

    // The bystander wrote as fast and lives on: the rule selects by name.
    std::this_thread::sleep_for(std::chrono::seconds(6));  // past its flood
    CHECK(containerd->running(db));
    for (const auto &event : agent.events())
        if (event.value("event", "") == "action" && event.contains("cgroup"))
            CHECK(event["cgroup"].value("container", "") != db.id);
}

TEST_CASE("top --by container --json names containerd's containers from --containerd-state: the CRI name and image, "
          "nerdctl's name, and the id alone when a task has no name annotation",
          "[containerd][top][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    auto containerd = start_containerd_or_skip();
    if (!containerd)
        return;
    const std::string write = "dd if=/dev/zero of=/data/out bs=65536 count=64 2>/dev/null && : > /done && exec sleep 600";
    ContainerdDaemon::Container cri, nerdctl, bare;
    auto run = run_top_while(
        {"--by", "container", "-a", "--local", "--containerd-state", containerd->state_dir()}, 4, 2, [&] {
            cri = containerd->run("k8s.io",
                                  {{"io.kubernetes.cri.container-name", "cd-api"},
                                   {"io.kubernetes.cri.image-name", "registry.example/api:2"}},
                                  write);
            nerdctl = containerd->run("default", {{"nerdctl/name", "cd-nerd"}}, write);
            bare = containerd->run("default", {}, write);
            for (const auto *container : {&cri, &nerdctl, &bare})
                wait_done(*containerd, *container);
        });
    INFO(run.stderr_text << "\ncontainerd: " << containerd->log());
    REQUIRE(!run.refreshes.empty());
    const json &last = run.refreshes.back();
    INFO(last.dump());
    CHECK(last.at("by") == "container");
    auto row_of = [&](const std::string &id) -> const json * {
        for (const auto &row : last.at("rows"))
            if (row.at("container").is_object() && row["container"].at("id") == id &&
                row.at("mount") == containerd->disk().path())
                return &row;
        return nullptr;
    };
    const json *cri_row = row_of(cri.id);
    REQUIRE(cri_row);
    CHECK((*cri_row)["container"]["name"] == "cd-api");
    CHECK((*cri_row)["container"]["image"] == "registry.example/api:2");
    CHECK((*cri_row)["container"]["runtime"] == "kubernetes");  // the cgroupfs form says no more
    CHECK((*cri_row)["total_bytes"].get<long long>() >= 4 << 20);
    const json *nerdctl_row = row_of(nerdctl.id);
    REQUIRE(nerdctl_row);
    CHECK((*nerdctl_row)["container"]["name"] == "cd-nerd");
    CHECK((*nerdctl_row)["container"]["image"].is_null());  // nerdctl puts no image in the spec
    const json *bare_row = row_of(bare.id);
    REQUIRE(bare_row);
    CHECK((*bare_row)["container"]["name"].is_null());  // named by its id alone, as before
}
