// Every YAML file under deploy/ parses (yaml-cpp), and the keys that make a
// deployment work are there: the DaemonSet's privileges, host pid namespace,
// mounts, metrics port and stdout stream; the shippers' sources reading our
// sockets; Prometheus' alert rules (docs/integrations.md).
#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>

#include "ecosystem/ecosystem_support.h"
#include "support/spawn.h"

using namespace diskwatch::test;

namespace {

const std::string kDeploy = DW_SOURCE_DIR "/deploy";

std::vector<YAML::Node> load_documents(const std::string &path)
{
    INFO(path);
    std::vector<YAML::Node> documents;
    REQUIRE_NOTHROW(documents = YAML::LoadAllFromFile(path));
    return documents;
}

const YAML::Node *find_kind(const std::vector<YAML::Node> &documents, const std::string &kind)
{
    for (const auto &document : documents)
        if (document["kind"] && document["kind"].as<std::string>() == kind)
            return &document;
    return nullptr;
}

std::vector<std::string> strings(const YAML::Node &sequence)
{
    std::vector<std::string> out;
    for (const auto &item : sequence)
        out.push_back(item.as<std::string>());
    return out;
}

bool contains(const std::vector<std::string> &list, const std::string &value)
{
    return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

TEST_CASE("every YAML file under deploy/ parses", "[deploy]")
{
    size_t files = 0;
    for (const auto &entry : std::filesystem::recursive_directory_iterator(kDeploy)) {
        const auto extension = entry.path().extension();
        if (extension != ".yaml" && extension != ".yml")
            continue;
        ++files;
        auto documents = load_documents(entry.path().string());
        INFO(entry.path());
        CHECK_FALSE(documents.empty());
        for (const auto &document : documents)
            CHECK(document.IsMap());
    }
    CHECK(files >= 8);
}

TEST_CASE("the DaemonSet runs privileged in the host pid namespace with /sys, /run and a metrics port",
          "[deploy][kubernetes]")
{
    auto documents = load_documents(kDeploy + "/kubernetes/daemonset.yaml");
    const YAML::Node *daemonset = find_kind(documents, "DaemonSet");
    REQUIRE(daemonset);
    CHECK((*daemonset)["apiVersion"].as<std::string>() == "apps/v1");
    const auto spec = (*daemonset)["spec"]["template"]["spec"];
    CHECK(spec["hostPID"].as<bool>());
    CHECK(spec["priorityClassName"].as<std::string>() == "system-node-critical");
    CHECK(spec["terminationGracePeriodSeconds"].as<int>() >= 15);  // time to release offenders

    // The selector matches the pod template's labels.
    CHECK((*daemonset)["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as<std::string>() ==
          (*daemonset)["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"].as<std::string>());

    REQUIRE(spec["containers"].size() == 1);
    const auto agent = spec["containers"][0];
    CHECK(agent["securityContext"]["privileged"].as<bool>());
    auto args = strings(agent["args"]);
    REQUIRE_FALSE(args.empty());
    CHECK(args[0] == "agent");
    CHECK(contains(args, "--metrics-listen"));
    CHECK(contains(args, "0.0.0.0:9863"));
    CHECK_FALSE(contains(args, "--json-out"));  // events to stdout for the cluster's log pipeline

    bool metrics_port = false;
    for (const auto &port : agent["ports"])
        metrics_port |= port["name"].as<std::string>() == "metrics" && port["containerPort"].as<int>() == 9863;
    CHECK(metrics_port);
    CHECK((*daemonset)["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"].as<std::string>() ==
          "9863");

    // Every volumeMount has its volume; /sys and /run/ebpf-diskwatch come from the host.
    std::map<std::string, YAML::Node> volumes;
    for (const auto &volume : spec["volumes"])
        volumes[volume["name"].as<std::string>()] = YAML::Node(volume);
    std::map<std::string, std::string> mounts;  // mountPath -> volume name
    for (const auto &mount : agent["volumeMounts"]) {
        INFO(mount["name"].as<std::string>());
        CHECK(volumes.count(mount["name"].as<std::string>()) == 1);
        mounts[mount["mountPath"].as<std::string>()] = mount["name"].as<std::string>();
    }
    REQUIRE(mounts.count("/sys"));
    CHECK(volumes[mounts["/sys"]]["hostPath"]["path"].as<std::string>() == "/sys");
    REQUIRE(mounts.count("/run/ebpf-diskwatch"));
    CHECK(volumes[mounts["/run/ebpf-diskwatch"]]["hostPath"]["path"].as<std::string>() == "/run/ebpf-diskwatch");
    REQUIRE(mounts.count("/etc/ebpf-diskwatch"));
    CHECK(volumes[mounts["/etc/ebpf-diskwatch"]]["configMap"]["name"].as<std::string>() == "ebpf-diskwatch-policy");

    const YAML::Node *config = find_kind(documents, "ConfigMap");
    REQUIRE(config);
    auto policy = YAML::Load((*config)["data"]["policy.yaml"].as<std::string>());
    CHECK(policy["mounts"]["usage_alert_percent"].as<int>() == 80);
    CHECK(contains(strings(policy["protect"]["comm"]), "kubelet"));

    const YAML::Node *service = find_kind(documents, "Service");
    REQUIRE(service);
    CHECK((*service)["spec"]["ports"][0]["targetPort"].as<std::string>() == "metrics");
}

// The image the DaemonSet runs is the one deploy/image/build-image makes from
// this build's .deb: the recipe's tag (ebpf-diskwatch:<the .deb's version>,
// which is CMake's project version) equals the manifest's `image:`. A
// version bump without the manifest's fails here. No root, no docker: the
// recipe's --print-tag. (Building and running the image:
// tests/integration/test_daemonset_image.cpp.)
TEST_CASE("the DaemonSet's image reference is the tag the image recipe gives this build's .deb",
          "[deploy][kubernetes][image]")
{
    auto documents = load_documents(kDeploy + "/kubernetes/daemonset.yaml");
    const YAML::Node *daemonset = find_kind(documents, "DaemonSet");
    REQUIRE(daemonset);
    const auto agent = (*daemonset)["spec"]["template"]["spec"]["containers"][0];
    const std::string image = agent["image"].as<std::string>();
    // A locally built image: never pulled (Always would ask a registry for it).
    CHECK(agent["imagePullPolicy"].as<std::string>() != "Always");

    TempDir dir("dw-image-tag-");
    const std::string deb = build_deb(dir);
    std::string tag;
    REQUIRE(run({kDeploy + "/image/build-image", "--print-tag", deb}, &tag) == 0);
    while (!tag.empty() && tag.back() == '\n')
        tag.pop_back();
    CHECK(tag == "ebpf-diskwatch:" DW_PROJECT_VERSION);
    CHECK(image == tag);
}

TEST_CASE("Vector's configs read the agent's socket as newline-delimited JSON", "[deploy][vector]")
{
    auto listener = load_documents(kDeploy + "/vector/vector.yaml").at(0);
    const auto source = listener["sources"]["diskwatch"];
    CHECK(source["type"].as<std::string>() == "socket");
    CHECK(source["mode"].as<std::string>() == "unix_stream");
    CHECK_FALSE(source["path"].as<std::string>().empty());
    CHECK(source["decoding"]["codec"].as<std::string>() == "json");
    CHECK(source["framing"]["method"].as<std::string>() == "newline_delimited");
    for (const auto &sink : listener["sinks"])
        for (const auto &input : sink.second["inputs"])
            CHECK((listener["sources"][input.as<std::string>()] || listener["transforms"][input.as<std::string>()]));

    auto subscriber = load_documents(kDeploy + "/vector/vector-subscriber.yaml").at(0);
    const auto exec = subscriber["sources"]["diskwatch"];
    CHECK(exec["type"].as<std::string>() == "exec");
    CHECK(exec["mode"].as<std::string>() == "streaming");
    CHECK(contains(strings(exec["command"]), "UNIX-CONNECT:/run/ebpf-diskwatch/events.sock"));
    CHECK(exec["decoding"]["codec"].as<std::string>() == "json");
}

TEST_CASE("Fluent Bit's configs read the socket or the syslog stream and parse the JSON", "[deploy][fluent-bit]")
{
    auto exec_config = load_documents(kDeploy + "/fluent-bit/fluent-bit.yaml").at(0);
    const auto input = exec_config["pipeline"]["inputs"][0];
    CHECK(input["name"].as<std::string>() == "exec");
    CHECK(input["oneshot"].as<bool>());
    CHECK_THAT(input["command"].as<std::string>(), Catch::Contains("UNIX-CONNECT:/run/ebpf-diskwatch/events.sock"));
    const std::string parser = input["parser"].as<std::string>();
    bool defined = false;
    for (const auto &candidate : exec_config["parsers"])
        defined |= candidate["name"].as<std::string>() == parser && candidate["format"].as<std::string>() == "json";
    CHECK(defined);
    CHECK(exec_config["pipeline"]["outputs"][0]["match"].as<std::string>() == input["tag"].as<std::string>());

    auto syslog_config = load_documents(kDeploy + "/fluent-bit/fluent-bit-syslog.yaml").at(0);
    const auto syslog = syslog_config["pipeline"]["inputs"][0];
    CHECK(syslog["name"].as<std::string>() == "syslog");
    CHECK(syslog["mode"].as<std::string>() == "unix_udp");
    std::vector<std::string> parsers;
    for (const auto &candidate : syslog_config["parsers"])
        parsers.push_back(candidate["name"].as<std::string>());
    CHECK(contains(parsers, syslog["parser"].as<std::string>()));
    CHECK(contains(parsers, syslog_config["pipeline"]["filters"][0]["parser"].as<std::string>()));
}

TEST_CASE("Prometheus' scrape configs target the metrics port and load the alert rules", "[deploy][prometheus]")
{
    auto prometheus = load_documents(kDeploy + "/prometheus/prometheus.yml").at(0);
    CHECK(contains(strings(prometheus["rule_files"]), "alerts.yml"));
    CHECK(contains(strings(prometheus["scrape_configs"][0]["static_configs"][0]["targets"]), "127.0.0.1:9863"));

    auto kubernetes = load_documents(kDeploy + "/kubernetes/prometheus-scrape.yaml").at(0);
    const auto job = kubernetes["scrape_configs"][0];
    CHECK(job["kubernetes_sd_configs"][0]["role"].as<std::string>() == "pod");
    CHECK(contains(strings(job["kubernetes_sd_configs"][0]["namespaces"]["names"]), "ebpf-diskwatch"));

    auto alerts = load_documents(kDeploy + "/prometheus/alerts.yml").at(0);
    std::vector<std::string> names;
    for (const auto &rule : alerts["groups"][0]["rules"]) {
        names.push_back(rule["alert"].as<std::string>());
        // The agent's own series, or Prometheus' `up` of the agent's job
        // (an agent that died exports nothing to alert on).
        const auto expr = rule["expr"].as<std::string>();
        CHECK((expr.find("ebpf_diskwatch_") != std::string::npos || expr.find("up{job=~\"ebpf-diskwatch") != std::string::npos));
    }
    CHECK(contains(names, "DiskFillingUp"));
    CHECK(contains(names, "RunawayWriterActedOn"));
    CHECK(contains(names, "DiskwatchDown"));
    CHECK(contains(names, "DiskwatchPolicyReloadFailed"));
}

TEST_CASE("Prometheus' config with the rules passes promtool check config", "[deploy][prometheus][promtool]")
{
    const std::string promtool = find_tool("promtool");
    if (promtool.empty())
        FAIL("promtool is not installed (Debian package prometheus; scripts/install-deps.sh --test)");
    std::string output;
    const int status = run_with_stdin({promtool, "check", "config", kDeploy + "/prometheus/prometheus.yml"}, "", &output);
    INFO(output);
    CHECK(status == 0);
}

TEST_CASE("rsyslogd accepts the shipped drop-in (rsyslogd -N1)", "[deploy][rsyslog]")
{
    const std::string rsyslogd = find_tool("rsyslogd");
    if (rsyslogd.empty())
        FAIL("rsyslogd is not installed (Debian package rsyslog; scripts/install-deps.sh --test)");
    std::string output;
    const int status = run_with_stdin({rsyslogd, "-N1", "-f", kDeploy + "/rsyslog/ebpf-diskwatch.conf"}, "", &output);
    INFO(output);
    CHECK(status == 0);
}
