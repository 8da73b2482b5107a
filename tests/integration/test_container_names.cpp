// Containers by the names operators give them, with the real agent: a fake
// Docker data root (--docker-root) and hand-made cgroups at
// <scratch cgroup>/docker/<64-hex id> (the cgroupfs driver's form), so no
// dockerd is needed. docs/containers.md, docs/policy.md, docs/events.md.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <optional>
#include <vector>
#include <fstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/agent_run.h"
#include "support/policy_yaml.h"
#include "support/scratch.h"
#include "support/spawn.h"
#include "support/tmux_session.h"
#include "support/top_run.h"

using namespace diskwatch::test;
using json = nlohmann::json;

namespace {

constexpr long long kMiB = 1 << 20;
const std::string kWebId = "5eb0000000000000000000000000000000000000000000000000000000000a01";
const std::string kDbId = "db00000000000000000000000000000000000000000000000000000000000b02";

// <parent>/docker/<id>: the cgroup a container gets from dockerd's cgroupfs
// driver, below a scratch cgroup of this test (the stale-fixture sweep removes
// the subtree if this binary is killed; the destructor, otherwise).
class ContainerCgroup {
public:
    ContainerCgroup(const Cgroup2Child &parent, const std::string &id)
        : docker_(parent.path() + "/docker"), path_(docker_ + "/" + id),
          relative_(parent.relative_path() + "/docker/" + id)
    {
        if (::mkdir(docker_.c_str(), 0755) != 0 && errno != EEXIST)
            FAIL("mkdir " << docker_ << ": " << std::strerror(errno));
        if (::mkdir(path_.c_str(), 0755) != 0) {
            const int error = errno;
            ::rmdir(docker_.c_str());  // no destructor runs for a constructor that throws
            FAIL("mkdir " << path_ << ": " << std::strerror(error));
        }
    }
    ~ContainerCgroup()
    {
        { std::ofstream(path_ + "/cgroup.kill") << "1"; }
        for (int attempt = 0; attempt < 100 && ::rmdir(path_.c_str()) != 0 && errno != ENOENT; ++attempt)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::rmdir(docker_.c_str());  // the other container's may still be there: its destructor's turn
    }
    ContainerCgroup(const ContainerCgroup &) = delete;
    ContainerCgroup &operator=(const ContainerCgroup &) = delete;
    const std::string &path() const { return path_; }
    const std::string &relative_path() const { return relative_; }

private:
    std::string docker_;
    std::string path_;
    std::string relative_;
};

// What dockerd would have written for a Compose service's container.
void write_config(const std::string &docker_root, const std::string &id, const std::string &name,
                  const std::string &image, const std::string &project, const std::string &service)
{
    const std::string dir = docker_root + "/containers/" + id;
    REQUIRE((::mkdir((docker_root + "/containers").c_str(), 0700) == 0 || errno == EEXIST));
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    const json config = {{"ID", id},
                         {"Name", "/" + name},
                         {"Image", "sha256:" + std::string(64, 'e')},
                         {"Config",
                          {{"Image", image},
                           {"Labels",
                            {{"com.docker.compose.project", project}, {"com.docker.compose.service", service}}}}}};
    std::ofstream(dir + "/config.v2.json") << config.dump();
}

// Two replicas of the Compose service shop/web, as dockerd would have them:
// their configs in a data root of the test's own, their cgroups below a
// scratch cgroup named `scratch_name`, and a disk to write to.
struct WebReplicas {
    explicit WebReplicas(const std::string &scratch_name) : scratch(scratch_name), web1(scratch, kWebId), web2(scratch, kWeb2Id)
    {
        write_config(docker_root.path(), kWebId, "shop-web-1", "nginx:1.27", "shop", "web");
        write_config(docker_root.path(), kWeb2Id, "shop-web-2", "nginx:1.27", "shop", "web");
    }
    static inline const std::string kWeb2Id = "5eb0000000000000000000000000000000000000000000000000000000000a02";
    LoopMount disk {128};
    ScratchDir docker_root;
    Cgroup2Child scratch;
    ContainerCgroup web1;
    ContainerCgroup web2;
};

}  // namespace

TEST_CASE("match.compose_project kills a flooding container's writer, its events name the container and service, "
          "and protect.compose_service keeps the protected one alive",
          "[containers][enforcement][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    ScratchDir docker_root;
    write_config(docker_root.path(), kWebId, "shop-web-1", "nginx:1.27", "shop", "web");
    write_config(docker_root.path(), kDbId, "shop-db-1", "postgres:16", "shop", "db");
    Cgroup2Child scratch("dw-compose");
    ContainerCgroup web(scratch, kWebId);
    ContainerCgroup db(scratch, kDbId);

    AgentRun agent(PolicyYaml()
                       .protect("compose_service", {"db"})
                       .rule("shop-flood")
                       .match("compose_project", {"shop"})
                       .when("10MiB/s", "500ms")
                       .action("kill")
                       .set("kill_grace", "0s"),
                   {"--docker-root", docker_root.path()});
    INFO(agent.stderr_text());
    REQUIRE(agent.started());

    // Both write well over the rule's rate; only the web service's writer is fair game.
    auto db_writer = start_writer(disk.path() + "/db.log", 60 * kMiB, "dw-db",
                                  {"--cgroup", db.path(), "--rate", std::to_string(20 * kMiB)});
    auto web_writer = start_writer(disk.path() + "/web.log", 1024 * kMiB, "dw-web",
                                   {"--cgroup", web.path(), "--rate", std::to_string(40 * kMiB)});
    const auto web_status = web_writer.wait(std::chrono::seconds(20));
    const auto db_status = db_writer.wait(std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(web_status);
    CHECK(*web_status == 128 + SIGKILL);
    REQUIRE(db_status);
    CHECK(*db_status == 0);  // protected: it wrote its 60 MiB and exited on its own

    auto kill = agent.wait_for(
        [](const json &e) {
            return e.value("event", "") == "action" && e.value("action", "") == "kill" && e["protected"] == false;
        },
        std::chrono::seconds(2));
    REQUIRE(kill);
    const json &cgroup = (*kill)["cgroup"];
    CHECK(cgroup["path"] == web.relative_path());
    CHECK(cgroup["container"] == kWebId);  // today's field, unchanged
    CHECK(cgroup["container_name"] == "shop-web-1");
    CHECK(cgroup["compose_project"] == "shop");
    CHECK(cgroup["compose_service"] == "web");
    CHECK(cgroup["image"] == "nginx:1.27");
    CHECK(cgroup["image_id"] == "sha256:" + std::string(64, 'e'));
    CHECK((*kill)["process"]["comm"] == "dw-web");

    // The protected one: the rule held for it, nothing was done, and the event says why.
    auto protected_runaway = agent.wait_for(
        [](const json &e) {
            return e.value("event", "") == "runaway" && e.value("state", "") == "started" &&
                   e["cgroup"].value("compose_service", "") == "db";
        },
        std::chrono::seconds(2));
    REQUIRE(protected_runaway);
    CHECK((*protected_runaway)["protected"] == true);
    CHECK((*protected_runaway)["protected_reason"] == "compose service db matches protect.compose_service db");
    CHECK((*protected_runaway)["cgroup"]["container_name"] == "shop-db-1");
    // Its kill events (one per episode) say it was protected, and did nothing.
    for (const auto &event : agent.events())
        if (event.value("event", "") == "action" && event.value("action", "") == "kill" &&
            event["cgroup"].value("container", "") == kDbId) {
            CHECK(event["protected"] == true);
            CHECK(event["mechanism"] == "none");
        }
}

TEST_CASE("top --json --by service sums a Compose service's replicas, named from --docker-root, local and attached "
          "to an agent (docs/top-json.md)",
          "[containers][top][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    WebReplicas replicas("dw-compose-top");
    LoopMount &disk = replicas.disk;
    const ScratchDir &docker_root = replicas.docker_root;
    const ContainerCgroup &web1 = replicas.web1;
    const ContainerCgroup &web2 = replicas.web2;

    // Local: top reads --docker-root itself. Attached: the agent does, and top
    // merges the agent's cgroup rows (no change to the control protocol).
    for (const bool attached : {false, true}) {
        INFO((attached ? "attached to an agent" : "local"));
        std::optional<AgentRun> agent;
        std::vector<std::string> arguments = {"--by", "service", "-a"};
        if (attached) {
            agent.emplace("", std::vector<std::string>{"--docker-root", docker_root.path()});
            REQUIRE(agent->started());
            arguments.insert(arguments.end(), {"--control-socket", agent->state_dir() + "/control.sock"});
        } else {
            arguments.insert(arguments.end(), {"--local", "--docker-root", docker_root.path()});
        }
        long long written = 0;
        const std::string tag = attached ? "attached" : "local";
        auto run = run_top_while(arguments, 2, 1.5, [&] {
            int replica = 0;
            for (const auto *cgroup : {&web1, &web2})
                written += run_writer({"--mode", "write", "--file",
                                       disk.path() + "/" + tag + "-" + std::to_string(++replica), "--bytes",
                                       std::to_string(4 * kMiB), "--comm", "dw-replica", "--cgroup", cgroup->path()})
                               .written;
        });
        INFO(run.stderr_text);
        REQUIRE(written == 8 * kMiB);
        REQUIRE(!run.refreshes.empty());
        const json &last = run.refreshes.back();
        INFO(last.dump());
        CHECK(last.at("by") == "service");
        CHECK(last.at("source") == (attached ? "agent" : "local"));
        const json *web = nullptr;
        // Other containers may run on this host (null names: no Compose labels): compare, never value().
        for (const auto &row : last.at("rows"))
            if (row.at("container").is_object() && row["container"].at("compose_service") == "web" &&
                row.at("mount") == disk.path())
                web = &row;
        REQUIRE(web);
        CHECK((*web)["container"]["compose_project"] == "shop");
        CHECK((*web)["container"]["image"] == "nginx:1.27");
        CHECK((*web)["container"]["image_id"] == "sha256:" + std::string(64, 'e'));
        CHECK((*web)["containers"] == 2);  // both replicas in one row
        // Each pass's own files (the agent starts after the local pass): exactly the replicas' bytes.
        CHECK((*web)["total_bytes"].get<long long>() == 8 * kMiB);
    }
}

TEST_CASE("the live view groups by Compose service and by container (--by service, then o, v, c), named from "
          "--docker-root",
          "[containers][top][interactive][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    WebReplicas replicas("dw-compose-live");
    LoopMount &disk = replicas.disk;
    const ScratchDir &docker_root = replicas.docker_root;
    const ContainerCgroup &web1 = replicas.web1;
    const ContainerCgroup &web2 = replicas.web2;

    // The live view took `--by service` only in batch before: now it starts there.
    TmuxSession tmux(std::string(DW_BINARY) + " top --local -a -d 1 --by service --docker-root " +
                     docker_root.path() + "; echo top-exited-$?; sleep 30");
    REQUIRE(tmux.wait_for("by service", std::chrono::seconds(30)));
    int replica = 0;
    for (const auto *cgroup : {&web1, &web2})
        REQUIRE(run_writer({"--mode", "write", "--file", disk.path() + "/live-" + std::to_string(++replica),
                            "--bytes", std::to_string(4 * kMiB), "--comm", "dw-replica", "--cgroup", cgroup->path()})
                    .written == 4 * kMiB);
    // Both replicas in one row, 8 MiB: the accumulated total since top started.
    CHECK(tmux.wait_for("service shop/web (2 containers)", std::chrono::seconds(10)));
    INFO(tmux.screen());
    CHECK(line_with(tmux.screen(), "service shop/web").find(" 8.00M ") != std::string::npos);

    tmux.keys("o");
    CHECK(tmux.wait_for("by container", std::chrono::seconds(5)));
    CHECK(tmux.wait_for("container shop-web-2 (service shop/web)", std::chrono::seconds(5)));
    CHECK(tmux.screen().find("container shop-web-1 (service shop/web)") != std::string::npos);
    CHECK(tmux.screen().find("(2 containers)") == std::string::npos);

    tmux.keys("v");
    CHECK(tmux.wait_for("service shop/web (2 containers)", std::chrono::seconds(5)));
    // By cgroup: the containers' own rows again, no merging.
    tmux.keys("c");
    CHECK(tmux.wait_for("by cgroup", std::chrono::seconds(5)));
    CHECK(tmux.wait_for("container shop-web-1 (service shop/web)", std::chrono::seconds(5)));
    tmux.keys("q");
    CHECK(tmux.wait_for("top-exited-0", std::chrono::seconds(10)));
}

TEST_CASE("a cgroup another user made, named after a protected container's id, borrows neither its name nor its "
          "protection (hostile review of issue 15)",
          "[containers][enforcement][security][bpf]")
{
    // The id of a running container is public (/proc/PID/cgroup); a user with a delegated
    // cgroup subtree (user@.service) can make <subtree>/docker-<id>.scope. Only root, the
    // runtime, makes the real ones: a container is named only from a root-owned cgroup.
    if (!bpf_tests_can_run())
        return;
    LoopMount disk(256);
    ScratchDir docker_root;
    write_config(docker_root.path(), kDbId, "shop-db-1", "postgres:16", "shop", "db");
    Cgroup2Child scratch("dw-spoof");
    ContainerCgroup db(scratch, kDbId);  // the real one, root's
    struct Spoof {
        std::string delegated, path;
        Spoof(const Cgroup2Child &parent, const std::string &id)
            : delegated(parent.path() + "/user-delegated"), path(delegated + "/docker-" + id + ".scope")
        {
            REQUIRE(::mkdir(delegated.c_str(), 0755) == 0);
            REQUIRE(::mkdir(path.c_str(), 0755) == 0);
            // What the user's own mkdir would have made: directories of theirs.
            REQUIRE(::chown(delegated.c_str(), 65534, 65534) == 0);
            REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
        }
        ~Spoof()
        {
            { std::ofstream(path + "/cgroup.kill") << "1"; }
            for (int attempt = 0; attempt < 100 && ::rmdir(path.c_str()) != 0 && errno != ENOENT; ++attempt)
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            ::rmdir(delegated.c_str());
        }
    } spoof(scratch, kDbId);

    AgentRun agent(PolicyYaml()
                       .protect("compose_service", {"db"})
                       .rule("spoof-flood")
                       .match("comm", {"dw-spoof"})
                       .when("10MiB/s", "500ms")
                       .action("kill")
                       .set("kill_grace", "0s"),
                   {"--docker-root", docker_root.path()});
    INFO(agent.stderr_text());
    REQUIRE(agent.started());
    auto writer = start_writer(disk.path() + "/spoof.log", 1024 * kMiB, "dw-spoof",
                               {"--cgroup", spoof.path, "--rate", std::to_string(40 * kMiB)});
    const auto status = writer.wait(std::chrono::seconds(20));
    INFO(agent.events_text());
    REQUIRE(status);
    CHECK(*status == 128 + SIGKILL);  // not protected: killed
    auto kill = agent.wait_for(
        [](const json &e) { return e.value("event", "") == "action" && e.value("action", "") == "kill"; },
        std::chrono::seconds(2));
    REQUIRE(kill);
    CHECK((*kill)["protected"] == false);
    CHECK((*kill)["cgroup"].value("container_name", "") == "");  // what the path claims is not a name
    CHECK((*kill)["cgroup"].value("compose_service", "") == "");
}
