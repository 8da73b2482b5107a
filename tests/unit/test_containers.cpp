// Containers by the names operators give them (docs/containers.md): the
// on-disk resolver on fixture roots (tests/fixtures/docker-root,
// containers-storage), and the policy keys, rule matching, protection and
// event fields built on it (docs/policy.md, docs/events.md).
#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <fstream>
#include <filesystem>

#include "actions/protection.h"
#include "aggregate/container_groups.h"
#include "events/events.h"
#include "resolve/containers.h"
#include "rules/policy.h"
#include "rules/rule_engine.h"
#include "views/json_report.h"
#include "views/text_report.h"
#include "views/top_state.h"

using namespace diskwatch;

namespace {

const std::string kCompose = "aaaa000000000000000000000000000000000000000000000000000000000001";
const std::string kPlain = "bbbb000000000000000000000000000000000000000000000000000000000002";
const std::string kCorrupt = "cccc000000000000000000000000000000000000000000000000000000000003";
const std::string kMissing = "dddd000000000000000000000000000000000000000000000000000000000004";
const std::string kHostile = "eeee000000000000000000000000000000000000000000000000000000000005";
const std::string kWrongTypes = "ffff000000000000000000000000000000000000000000000000000000000006";

ContainerRoots fixture_roots()
{
    ContainerRoots roots;
    roots.docker = std::string(DW_FIXTURES_DIR) + "/docker-root";
    roots.containers_storage = std::string(DW_FIXTURES_DIR) + "/containers-storage";
    roots.containerd_state = std::string(DW_FIXTURES_DIR) + "/containerd-state";
    return roots;
}

Policy parsed_ok(const std::string &yaml)
{
    std::string error;
    auto policy = parse_policy(yaml, "policy.yaml", &error);
    INFO(error);
    REQUIRE(policy);
    return *policy;
}

std::string error_of(const std::string &yaml)
{
    std::string error;
    CHECK_FALSE(parse_policy(yaml, "policy.yaml", &error));
    return error;
}

ReportRow container_row(const std::string &name, const std::string &project, const std::string &service,
                        const std::string &image)
{
    ReportRow row;
    row.pid = 4242;
    row.comm = "nginx";
    row.cgroup = "/system.slice/docker-" + kCompose + ".scope";
    row.container = kCompose;
    row.container_name = name;
    row.compose_project = project;
    row.compose_service = service;
    row.container_image = image;
    return row;
}

}  // namespace

TEST_CASE("a Compose container's name, image and project/service come from its config.v2.json", "[containers]")
{
    ContainerResolver resolver(fixture_roots());
    const auto info = resolver.lookup(kCompose, "docker");
    REQUIRE(info);
    CHECK(info->name == "shop-web-1");
    CHECK(info->image == "nginx:1.27");
    CHECK(info->image_id == "sha256:5f1d0c0a7e3b9d2c4a6b8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d");
    CHECK(info->compose_project == "shop");
    CHECK(info->compose_service == "web");
    // The same through the cgroup path, in both Docker cgroup drivers.
    const auto by_scope = resolver.lookup_cgroup("/system.slice/docker-" + kCompose + ".scope");
    REQUIRE(by_scope);
    CHECK(by_scope->name == "shop-web-1");
    const auto by_cgroupfs = resolver.lookup_cgroup("/docker/" + kCompose);
    REQUIRE(by_cgroupfs);
    CHECK(by_cgroupfs->compose_service == "web");

    const auto plain = resolver.lookup(kPlain, "docker");
    REQUIRE(plain);
    CHECK(plain->name == "suricata");
    CHECK(plain->image == "jasonish/suricata:7.0");
    CHECK(plain->compose_project.empty());
    CHECK(plain->compose_service.empty());
}

TEST_CASE("a corrupt, missing or ill-typed config.v2.json is unknown, never a crash", "[containers]")
{
    ContainerResolver resolver(fixture_roots());
    CHECK(resolver.lookup(kCorrupt, "docker") == nullptr);
    CHECK(resolver.lookup(kMissing, "docker") == nullptr);
    CHECK(resolver.lookup("", "docker") == nullptr);
    CHECK(resolver.lookup(kCompose, "containerd") == nullptr);  // containerd's bolt database is not read
    // Fields of the wrong type are left empty, not trusted or converted.
    const auto odd = resolver.lookup(kWrongTypes, "docker");
    REQUIRE(odd);
    CHECK(odd->name.empty());
    CHECK(odd->image.empty());
    CHECK(odd->image_id.empty());
    CHECK(odd->compose_project.empty());
    // The pure parser on what no file here holds.
    for (const char *text : {"", "null", "[]", "\"Name\"", "{\"Name\":", "{\"Config\":null}", "\xff\xfe{}"}) {
        INFO(text);
        const auto parsed = parse_docker_config(text);
        CHECK((!parsed || parsed->name.empty()));
    }
    CHECK_FALSE(ContainerResolver(ContainerRoots{"/nonexistent-docker-root", ""}).lookup(kCompose, "docker"));
}

TEST_CASE("hostile container names keep their exact bytes: newlines and escapes are data", "[containers][names]")
{
    ContainerResolver resolver(fixture_roots());
    const auto info = resolver.lookup(kHostile, "docker");
    REQUIRE(info);
    CHECK(info->name == std::string("evil\n{\"event\":\"forged\"}\x1b[31m\0x", 30));
    CHECK(info->image == "img\r\nwith-newline");
    CHECK(info->compose_project == "p\x07roj");
    CHECK(info->compose_service == "s\tvc");
}

TEST_CASE("the container cache keeps misses, reads a new id at once, and is bounded", "[containers]")
{
    ContainerResolver resolver(fixture_roots(), /*capacity=*/2);
    CHECK(resolver.lookup(kMissing, "docker") == nullptr);
    CHECK(resolver.lookup(kMissing, "docker") == nullptr);
    CHECK(resolver.reads() == 1);  // the miss is cached: not read again each refresh
    REQUIRE(resolver.lookup(kCompose, "docker"));
    CHECK(resolver.reads() == 2);  // a new id is read at once
    REQUIRE(resolver.lookup(kPlain, "docker"));
    CHECK(resolver.cached() == 2);  // never more than its capacity
    CHECK(resolver.reads() == 3);
    // kMissing was the least recently used: dropped, so read again.
    CHECK(resolver.lookup(kMissing, "docker") == nullptr);
    CHECK(resolver.reads() == 4);
    CHECK(resolver.cached() == 2);
    REQUIRE(resolver.lookup(kPlain, "docker"));  // still cached
    CHECK(resolver.reads() == 4);
}

TEST_CASE("a renamed container is named anew once its cached answer is due, and a long label is cut to 1 KiB",
          "[containers]")
{
    char dir_template[] = "/tmp/dw-docker-root-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const std::string root = dir_template;
    const std::string dir = root + "/containers/" + kPlain;
    std::filesystem::create_directories(dir);
    const auto write = [&](const std::string &name) {
        std::ofstream(dir + "/config.v2.json")
            << nlohmann::json {{"Name", "/" + name},
                               {"Config", {{"Image", "busybox"},
                                           {"Labels", {{"com.docker.compose.service", std::string(5000, 's')}}}}}}
                   .dump();
    };
    write("db");
    ContainerRoots roots;
    roots.docker = root;
    ContainerResolver fresh(roots, 16, std::chrono::milliseconds(0));  // every answer due at once
    ContainerResolver cached(roots, 16, std::chrono::seconds(3600));
    CHECK(fresh.lookup(kPlain, "docker")->name == "db");
    CHECK(cached.lookup(kPlain, "docker")->name == "db");
    CHECK(fresh.lookup(kPlain, "docker")->compose_service.size() == 1024);
    write("db-renamed");  // docker rename: the same id, a new name
    CHECK(fresh.lookup(kPlain, "docker")->name == "db-renamed");
    CHECK(cached.lookup(kPlain, "docker")->name == "db");  // until its answer is due
    std::filesystem::remove_all(root);
}

TEST_CASE("podman's and CRI-O's containers.json names a container and its image", "[containers]")
{
    ContainerResolver resolver(fixture_roots());
    const auto info = resolver.lookup_cgroup("/machine.slice/libpod-" + kMissing + ".scope");
    REQUIRE(info);
    CHECK(info->name == "podman-db");
    CHECK(info->image == "docker.io/library/postgres:16");
    CHECK(info->compose_project.empty());  // podman-compose's labels are in libpod's database: not read
    // An entry with no names and metadata that is not JSON: known, but nameless.
    const auto bare = resolver.lookup("dddd000000000000000000000000000000000000000000000000000000000009", "podman");
    REQUIRE(bare);
    CHECK(bare->name.empty());
    CHECK(bare->image.empty());
    CHECK_FALSE(parse_containers_storage("{not json", kMissing));
    CHECK_FALSE(parse_containers_storage("{}", kMissing));
}

TEST_CASE("containerd's own containers are named from their task's OCI spec annotations (a spec containerd 1.6 "
          "wrote), and Docker's name wins for an id both know",
          "[containers][containerd]")
{
    const std::string cri = "c0de000000000000000000000000000000000000000000000000000000000c01";
    ContainerResolver resolver(fixture_roots());
    for (const char *runtime : {"containerd", "kubernetes"}) {
        INFO(runtime);
        const auto info = resolver.lookup(cri, runtime);
        REQUIRE(info);
        CHECK(info->name == "api");
        CHECK(info->image == "registry.example/shop/api:1.4");
        CHECK(info->image_id.empty());
        CHECK(info->compose_project.empty());
    }
    // The cgroupfs driver's Kubernetes form and containerd's systemd form.
    const auto by_cgroup = resolver.lookup_cgroup("/kubepods/besteffort/pod0a1b2c3d-0000-4000-8000-00000000c0de/" + cri);
    REQUIRE(by_cgroup);
    CHECK(by_cgroup->name == "api");
    REQUIRE(resolver.lookup_cgroup("/system.slice/cri-containerd-" + cri + ".scope"));
    // Docker's containers are containerd tasks too (namespace moby): Docker's file wins.
    const std::string docker = "6662dcef4cf018b9c810fe487427f743f7d8db12d08e9d061a5d542a73db2dca";
    for (const char *runtime : {"docker", "kubernetes"}) {
        INFO(runtime);
        const auto info = resolver.lookup(docker, runtime);
        REQUIRE(info);
        CHECK(info->name == "shop-web-1");
    }
    // Not read for the runtimes that are not containerd's.
    CHECK_FALSE(resolver.lookup(cri, "podman"));
    CHECK_FALSE(resolver.lookup(cri, "cri-o"));
    // Off when empty.
    ContainerRoots off = fixture_roots();
    off.containerd_state.clear();
    CHECK_FALSE(ContainerResolver(off).lookup(cri, "containerd"));
}

TEST_CASE("parse_containerd_spec: CRI's name before nerdctl's, Compose annotations when present, nothing from "
          "what is not a JSON object or of the wrong type",
          "[containers][containerd]")
{
    auto nerdctl = parse_containerd_spec(R"({"annotations":{"nerdctl/name":"web","nerdctl/namespace":"default"}})");
    REQUIRE(nerdctl);
    CHECK(nerdctl->name == "web");
    CHECK(nerdctl->image.empty());
    auto both = parse_containerd_spec(
        R"({"annotations":{"nerdctl/name":"n","io.kubernetes.cri.container-name":"k",
            "com.docker.compose.project":"shop","com.docker.compose.service":"db"}})");
    REQUIRE(both);
    CHECK(both->name == "k");
    CHECK(both->compose_project == "shop");
    CHECK(both->compose_service == "db");
    // A task with no annotations (plain `ctr run`): known, nameless.
    auto bare = parse_containerd_spec(R"({"ociVersion":"1.0.2"})");
    REQUIRE(bare);
    CHECK(bare->name.empty());
    auto wrong = parse_containerd_spec(R"({"annotations":{"io.kubernetes.cri.container-name":42,
        "io.kubernetes.cri.image-name":["x"]}})");
    REQUIRE(wrong);
    CHECK(wrong->name.empty());
    CHECK(wrong->image.empty());
    CHECK(parse_containerd_spec(R"({"annotations":["nerdctl/name"]})")->name.empty());
    CHECK_FALSE(parse_containerd_spec("[]"));
    CHECK_FALSE(parse_containerd_spec("{\"annotations\":"));
    const auto longest = parse_containerd_spec(
        nlohmann::json{{"annotations", {{"nerdctl/name", std::string(5000, 'n')}}}}.dump());
    REQUIRE(longest);
    CHECK(longest->name.size() == 1024);
}

TEST_CASE("containerd's state is read safely: no symlink or FIFO is followed or waited on, no id leaves its "
          "namespace directory",
          "[containers][containerd][security]")
{
    namespace fs = std::filesystem;
    char dir_template[] = "/tmp/dw-containerd-state-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const std::string state = dir_template;
    const std::string tasks = state + "/io.containerd.runtime.v2.task";
    const std::string fifo_id = "f1f0000000000000000000000000000000000000000000000000000000000001";
    const std::string link_id = "11aa000000000000000000000000000000000000000000000000000000000002";
    const std::string outside_id = "0a75000000000000000000000000000000000000000000000000000000000003";
    const std::string spec = R"({"annotations":{"nerdctl/name":"borrowed"}})";
    fs::create_directories(tasks + "/default/" + fifo_id);
    fs::create_directories(tasks + "/default/" + link_id);
    fs::create_directories(state + "/elsewhere/" + outside_id);
    std::ofstream(state + "/elsewhere/" + outside_id + "/config.json") << spec;
    std::ofstream(state + "/elsewhere/config.json") << spec;
    REQUIRE(::mkfifo((tasks + "/default/" + fifo_id + "/config.json").c_str(), 0600) == 0);
    fs::create_symlink(state + "/elsewhere/" + outside_id + "/config.json", tasks + "/default/" + link_id + "/config.json");
    fs::create_directory_symlink(state + "/elsewhere", tasks + "/linked-namespace");

    ContainerRoots roots;
    roots.docker.clear();
    roots.containers_storage.clear();
    roots.containerd_state = state;
    ContainerResolver resolver(roots);
    const auto started = std::chrono::steady_clock::now();
    CHECK_FALSE(resolver.lookup(fifo_id, "containerd"));     // a FIFO: refused, not waited on
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    CHECK_FALSE(resolver.lookup(link_id, "containerd"));     // a symlinked config.json
    CHECK_FALSE(resolver.lookup(outside_id, "containerd"));  // a symlinked namespace directory
    CHECK_FALSE(resolver.lookup("..", "containerd"));        // ids that are not one path component
    CHECK_FALSE(resolver.lookup("../elsewhere", "containerd"));
    fs::remove_all(state);
}

TEST_CASE("policy: match and protect take container, image, compose_project and compose_service (docs/policy.md)",
          "[policy][containers]")
{
    const Policy policy = parsed_ok("protect:\n"
                                    "  compose_service: [db]\n"
                                    "  container: [\"prod-*\"]\n"
                                    "  image: [\"postgres:*\"]\n"
                                    "  compose_project: [infra]\n"
                                    "rules:\n"
                                    "  - name: shop\n"
                                    "    match:\n"
                                    "      compose_project: [shop]\n"
                                    "      compose_service: [web, worker]\n"
                                    "      container: [\"shop-*\"]\n"
                                    "      image: [\"nginx:*\"]\n"
                                    "    when: {write_rate: 10MiB/s, for: 2s}\n"
                                    "    action: kill\n");
    CHECK(policy.protect.compose_service == std::vector<std::string>{"db"});
    CHECK(policy.protect.container == std::vector<std::string>{"prod-*"});
    CHECK(policy.protect.image == std::vector<std::string>{"postgres:*"});
    CHECK(policy.protect.compose_project == std::vector<std::string>{"infra"});
    REQUIRE(policy.rules.size() == 1);
    const auto &match = policy.rules[0].match;
    CHECK(match.compose_project == std::vector<std::string>{"shop"});
    CHECK(match.compose_service == std::vector<std::string>{"web", "worker"});
    CHECK(match.container == std::vector<std::string>{"shop-*"});
    CHECK(match.image == std::vector<std::string>{"nginx:*"});
    // A rule that selects only by container is not one that "acts on whatever matches its mounts".
    for (const auto &warning : policy_warnings(policy, {}))
        CHECK(warning.find("no comm, exe, cgroup") == std::string::npos);
}

TEST_CASE("policy: a bad container key names the file, line and key", "[policy][containers]")
{
    CHECK(error_of("rules:\n  - name: r\n    match:\n      compose_project: shop\n    when: {written: 1GiB}\n") ==
          "policy.yaml:4: rules.r.match.compose_project: must be a list, like [\"shop\"]");
    CHECK(error_of("rules:\n  - name: r\n    match:\n      container: [\"\"]\n    when: {written: 1GiB}\n") ==
          "policy.yaml:4: rules.r.match.container[0]: an empty pattern matches nothing");
    CHECK(error_of("protect:\n  compose_service: {a: b}\n") ==
          "policy.yaml:2: protect.compose_service: must be a list of strings");
    const std::string misspelt = error_of("protect:\n  compose_services: [db]\n");
    CHECK(misspelt.rfind("policy.yaml:2: protect.compose_services:", 0) == 0);
    const std::string image = error_of("rules:\n  - name: r\n    match:\n      images: [x]\n    when: {written: 1GiB}\n");
    CHECK(image.rfind("policy.yaml:4: rules.r.match.images:", 0) == 0);
}

TEST_CASE("rules select containers by name, image and Compose labels, never by an unknown value",
          "[rules][containers]")
{
    PolicyRule rule;
    rule.match.compose_project = {"shop"};
    rule.match.compose_service = {"web", "work*"};
    CHECK(RuleEngine::row_matches(rule, container_row("shop-web-1", "shop", "web", "nginx:1.27")));
    CHECK(RuleEngine::row_matches(rule, container_row("shop-worker-3", "shop", "worker", "x")));
    CHECK_FALSE(RuleEngine::row_matches(rule, container_row("shop-db-1", "shop", "db", "postgres:16")));
    CHECK_FALSE(RuleEngine::row_matches(rule, container_row("blog-web-1", "blog", "web", "nginx:1.27")));

    PolicyRule by_name;
    by_name.match.container = {"suri*"};
    CHECK(RuleEngine::row_matches(by_name, container_row("suricata", "", "", "jasonish/suricata:7.0")));
    CHECK_FALSE(RuleEngine::row_matches(by_name, container_row("nginx", "", "", "")));

    PolicyRule by_image;
    by_image.match.image = {"nginx:*"};
    CHECK(RuleEngine::row_matches(by_image, container_row("a", "", "", "nginx:1.27")));
    CHECK_FALSE(RuleEngine::row_matches(by_image, container_row("a", "", "", "httpd:2")));

    // "*" means "any container": a host process (no container) or a container
    // whose runtime state is unknown is not selected.
    PolicyRule any_compose;
    any_compose.match.compose_project = {"*"};
    ReportRow host;
    host.comm = "dd";
    host.cgroup = "/user.slice";
    CHECK_FALSE(RuleEngine::row_matches(any_compose, host));
    CHECK_FALSE(RuleEngine::row_matches(any_compose, container_row("", "", "", "")));
    CHECK(RuleEngine::row_matches(any_compose, container_row("x", "p", "s", "")));
}

TEST_CASE("the rule engine's subjects carry the container's names", "[rules][containers]")
{
    PolicyRule rule;
    rule.name = "shop";
    rule.scope = RuleScope::cgroup;
    rule.match.compose_project = {"shop"};
    rule.when.any = {{Condition::Kind::written, 1000, 60}};
    RuleEngine engine({rule});
    ReportRow row = container_row("shop-web-1", "shop", "web", "nginx:1.27");
    row.container_image_id = "sha256:" + std::string(64, 'e');
    row.cgroup_id = 77;
    row.write_bytes = 5000;
    row.total_bytes = 5000;
    engine.evaluate(0, {row}, {});
    engine.evaluate(1, {row}, {});
    const auto holding = engine.holding();
    REQUIRE(holding.size() == 1);
    const Subject &subject = holding[0].second;
    CHECK(subject.container == kCompose);
    CHECK(subject.container_name == "shop-web-1");
    CHECK(subject.container_image == "nginx:1.27");
    CHECK(subject.container_image_id == "sha256:" + std::string(64, 'e'));
    CHECK(subject.compose_project == "shop");
    CHECK(subject.compose_service == "web");
}

TEST_CASE("protect.compose_service and its kin protect a container by what its runtime calls it", "[actions][containers]")
{
    ProtectList list;
    list.compose_service = {"db"};
    list.container = {"prod-*"};
    list.image = {"postgres:*"};
    list.compose_project = {"infra"};
    // The process path: the cgroup path names the container, the resolver its names.
    Protection protection(list, ::getpid(), "/nonexistent-cgroup2", ProtectedExes::Options{},
                          std::make_shared<ContainerResolver>(fixture_roots()));
    CHECK_FALSE(protection.process_reason(999999, "nginx", "", "/docker/" + kCompose).has_value());

    ProtectList web = list;
    web.compose_service = {"web"};
    Protection protects_web(web, ::getpid(), "/nonexistent-cgroup2", ProtectedExes::Options{},
                            std::make_shared<ContainerResolver>(fixture_roots()));
    CHECK(protects_web.process_reason(999999, "nginx", "", "/docker/" + kCompose) ==
          "compose service web matches protect.compose_service web");

    // The subject path: the names the rule engine saw (a cgroup subject with no processes).
    Subject subject;
    subject.scope = RuleScope::cgroup;
    subject.cgroup = "/docker/" + kPlain;
    subject.container = kPlain;
    for (const auto &[field, value, reason] :
         {std::tuple<std::string Subject::*, std::string, std::string>{
              &Subject::compose_service, "db", "compose service db matches protect.compose_service db"},
          {&Subject::container_name, "prod-api", "container prod-api matches protect.container prod-*"},
          {&Subject::container_image, "postgres:16", "image postgres:16 matches protect.image postgres:*"},
          {&Subject::compose_project, "infra", "compose project infra matches protect.compose_project infra"}}) {
        Subject named = subject;
        named.*field = value;
        CHECK(protection.subject_reason(named) == reason);
    }
    Subject other = subject;
    other.container_name = "shop-web-1";
    other.compose_service = "web";
    CHECK_FALSE(protection.subject_reason(other).has_value());
}

TEST_CASE("events add container_name, image, compose_project and compose_service to cgroup (docs/events.md)",
          "[events][containers]")
{
    Subject subject;
    subject.cgroup_id = 9;
    subject.cgroup = "/system.slice/docker-" + kCompose + ".scope";
    subject.container = kCompose;
    subject.container_name = "shop-web-1";
    subject.container_image = "nginx:1.27";
    subject.container_image_id = "sha256:" + std::string(64, '5');
    subject.compose_project = "shop";
    subject.compose_service = "web";
    const auto json = cgroup_json(subject);
    CHECK(json.at("container") == kCompose);  // today's field, unchanged
    CHECK(json.at("container_name") == "shop-web-1");
    CHECK(json.at("image") == "nginx:1.27");
    CHECK(json.at("image_id") == "sha256:" + std::string(64, '5'));
    CHECK(json.at("compose_project") == "shop");
    CHECK(json.at("compose_service") == "web");
    CHECK(json.at("path") == subject.cgroup);

    // A container whose state is unknown: the keys are there, empty.
    Subject unknown = subject;
    unknown.container_name.clear();
    unknown.container_image.clear();
    unknown.container_image_id.clear();
    unknown.compose_project.clear();
    unknown.compose_service.clear();
    CHECK(cgroup_json(unknown).at("container_name") == "");
    CHECK(cgroup_json(unknown).at("compose_service") == "");

    // No container: no container keys beyond today's.
    Subject host;
    host.cgroup = "/user.slice";
    CHECK_FALSE(cgroup_json(host).contains("container_name"));
    CHECK_FALSE(cgroup_json(host).contains("compose_project"));

    // Bytes that are not UTF-8 keep their exact value in <key>_b64; control
    // bytes are escaped by the JSON writer, so one event stays one line.
    Subject hostile = subject;
    hostile.container_name = std::string("evil\n\x1b[2J\xff", 10);
    hostile.compose_service = "s\nvc";
    const auto bad = cgroup_json(hostile);
    CHECK(bad.at("container_name_b64") == "ZXZpbAobWzJK/w==");
    CHECK_FALSE(bad.contains("compose_service_b64"));
    const std::string line = bad.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(nlohmann::json::parse(line).at("compose_service") == "s\nvc");

    // The action and runaway events carry them too.
    PolicyRule rule;
    rule.name = "shop";
    const auto runaway = runaway_event("h", rule, subject, RuleMeasures{}, true, false).record();
    CHECK(runaway.at("cgroup").at("compose_service") == "web");
    const auto action = ActionEvent("h", "kill", &rule.name, subject, "cgroup.kill", false).build().record();
    CHECK(action.at("cgroup").at("container_name") == "shop-web-1");
}

TEST_CASE("top --json --by service merges a Compose service's containers, --by container keeps each (docs/top-json.md)",
          "[containers][json]")
{
    WriteReport by_cgroup;
    by_cgroup.by = GroupBy::cgroup;
    auto row = [](uint64_t cgroup_id, const std::string &id, const std::string &name, const std::string &service,
                  double bps, const std::string &dev) {
        ReportRow r = container_row(name, service.empty() ? "" : "shop", service, "nginx:1.27");
        r.container_image_id = "sha256:" + std::string(64, 'e');
        r.cgroup_id = cgroup_id;
        r.container = id;
        r.cgroup = "/docker/" + id;
        r.write_bps = bps;
        r.write_bytes = static_cast<uint64_t>(bps);
        r.total_bytes = static_cast<uint64_t>(bps) * 2;
        r.processes = 1;
        r.dev = dev;
        return r;
    };
    const std::string web1(64, '1'), web2(64, '2'), db(64, '3');
    by_cgroup.rows = {row(1, web1, "shop-web-1", "web", 300, "7:0"), row(2, web2, "shop-web-2", "web", 500, "7:0"),
                      row(3, db, "shop-db-1", "db", 100, "7:0"), row(4, web1, "shop-web-1", "web", 50, "7:1")};
    ReportRow host;
    host.cgroup_id = 9;
    host.cgroup = "/system.slice/cron.service";
    host.write_bps = 1000;
    host.dev = "7:0";
    by_cgroup.rows.push_back(host);

    const WriteReport services = group_by_container(by_cgroup, ContainerGrouping::service);
    const auto json = to_json(services);
    CHECK(json.at("by") == "service");
    REQUIRE(json.at("rows").size() == 4);  // cron; shop/web on 7:0; shop/db; shop/web on 7:1
    CHECK(json["rows"][0].at("cgroup") == "/system.slice/cron.service");
    CHECK(json["rows"][0].at("container").is_null());
    const auto &web = json["rows"][1];
    CHECK(web.at("write_bps") == 800.0);  // both replicas
    CHECK(web.at("containers") == 2);
    CHECK(web.at("processes") == 2);
    CHECK(web.at("container").at("compose_service") == "web");
    CHECK(web.at("container").at("image_id") == "sha256:" + std::string(64, 'e'));
    CHECK(web.at("container").at("name") == "shop-web-2");  // the fastest describes the group
    CHECK(json["rows"][2].at("container").at("compose_service") == "db");
    CHECK(json["rows"][3].at("dev") == "7:1");

    const WriteReport containers = group_by_container(by_cgroup, ContainerGrouping::container);
    const auto per_container = to_json(containers);
    CHECK(per_container.at("by") == "container");
    CHECK(per_container.at("rows").size() == 5);  // every (container, mount) is its own row

    // What an attached top reads back is the same grouping.
    const WriteReport back = report_from_json(json);
    CHECK(back.grouping == "service");
    REQUIRE(back.rows.size() == 4);
    CHECK(back.rows[1].containers == 2);
    CHECK(back.rows[1].compose_project == "shop");
}

TEST_CASE("check-config warns when protect.container or protect.image protects every container", "[policy][containers]")
{
    const Policy policy = parsed_ok("protect:\n  container: [\"*\"]\n  image: [db]\n");
    const auto warnings = policy_warnings(policy, {});
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].rfind("protect.container: \"*\" matches everything: every container the runtime names is "
                            "protected",
                            0) == 0);
}

TEST_CASE("a config.v2.json a real dockerd wrote (20.10) gives the name, image, image id and Compose labels",
          "[containers]")
{
    // tests/fixtures/docker-root/README.md says how it was made.
    ContainerResolver resolver(fixture_roots());
    const auto info = resolver.lookup("6662dcef4cf018b9c810fe487427f743f7d8db12d08e9d061a5d542a73db2dca", "docker");
    REQUIRE(info);
    CHECK(info->name == "shop-web-1");
    CHECK(info->image == "dn-verify/img:1");
    CHECK(info->image_id == "sha256:53ec45931e8bd8004feb8a5cbc6a85244afddb0c434404d0f90c7450d2f386a3");
    CHECK(info->compose_project == "shop");
    CHECK(info->compose_service == "web");
}

TEST_CASE("top's label and filter know the container's Compose service, image and name", "[containers][top]")
{
    ReportRow row = container_row("shop-web-1", "shop", "web", "nginx:1.27");
    CHECK(who_text(row) == "container shop-web-1 (service shop/web)");
    row.containers = 2;
    CHECK(who_text(row) == "service shop/web (2 containers)");
    CHECK(who_text(container_row("suricata", "", "", "")) == "container suricata");
    for (const char *filter : {"shop-web", "WEB", "nginx:1", "shop"})
        CHECK(row_matches_filter(row, filter));
    CHECK_FALSE(row_matches_filter(row, "postgres"));
}
