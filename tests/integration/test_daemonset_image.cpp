// The DaemonSet can be deployed (issue #17): deploy/image/build-image makes
// the image from this build's .deb (debootstrap + docker import, nothing
// pulled) in a private dockerd (support/docker_fixture.h), and the image runs
// the way deploy/kubernetes/daemonset.yaml runs it: privileged, in the host's
// pid namespace, with the manifest's volumes and its `args` (read from the
// manifest with yaml-cpp), until its readinessProbe (httpGet on the metrics
// port) answers. A write on the host then shows in /metrics; a stop (SIGTERM,
// as the kubelet sends) ends it and nothing is left. The manifest's image
// reference against the recipe's tag: tests/ecosystem/test_deploy.cpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "ecosystem/ecosystem_support.h"
#include "support/docker_fixture.h"
#include "support/scratch.h"
#include "support/spawn.h"

using namespace diskwatch::test;

namespace {

const std::string kManifest = DW_SOURCE_DIR "/deploy/kubernetes/daemonset.yaml";
const std::string kRecipe = DW_SOURCE_DIR "/deploy/image/build-image";
// The debootstrap base is cached here between runs (keyed by its package list).
const std::string kImageWork = DW_BUILD_DIR "/image";

std::string trimmed(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
        text.pop_back();
    return text;
}

bool has_line(const std::string &text, const std::string &wanted)
{
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line == wanted)
            return true;
    return false;
}

std::string need_tool(const std::string &name, const std::string &package)
{
    std::string path = find_tool(name);
    if (path.empty())
        FAIL(name + " is not installed (Debian package " + package + "; scripts/install-deps.sh --test)");
    return path;
}

// True when something accepts TCP connections on 127.0.0.1:port.
bool port_answers(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = ::connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof address) == 0;
    ::close(fd);
    return connected;
}

// The value of the first sample of `metric` whose labels contain `label`, or -1.
double sample(const std::string &metrics, const std::string &metric, const std::string &label)
{
    std::istringstream lines(metrics);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(metric + "{", 0) != 0 || line.find(label) == std::string::npos)
            continue;
        return std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
    }
    return -1;
}

// The capabilities Docker's --privileged grants (0 to CAP_CHECKPOINT_RESTORE)
// that this process's bounding set does not have.
std::vector<std::string> caps_missing_from_bounding_set()
{
    static const char *const names[] = {
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE"};
    std::ifstream status("/proc/self/status");
    unsigned long long bounding = ~0ULL;
    for (std::string line; std::getline(status, line);)
        if (line.rfind("CapBnd:", 0) == 0)
            bounding = std::stoull(line.substr(7), nullptr, 16);
    std::vector<std::string> missing;
    for (size_t bit = 0; bit < sizeof names / sizeof names[0]; ++bit)
        if (!(bounding & (1ULL << bit)))
            missing.push_back(names[bit]);
    return missing;
}

// The file name of the program a host pid runs, "" when there is none.
std::string exe_of(int pid)
{
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
    return ec ? "" : exe.filename().string();
}

// Whether the mount holding `path` propagates (shared: or master: in
// /proc/self/mountinfo's optional fields), as rslave needs.
bool shared_or_slave(const std::string &path)
{
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string best, best_fields;
    for (std::string line; std::getline(mountinfo, line);) {
        std::istringstream fields(line);
        std::string id, parent, dev, root, mount_point;
        fields >> id >> parent >> dev >> root >> mount_point;
        const bool below = mount_point == "/" || path == mount_point || path.rfind(mount_point + "/", 0) == 0;
        if (below && mount_point.size() >= best.size()) {
            best = mount_point;
            best_fields = line.substr(0, line.find(" - "));
        }
    }
    return best_fields.find(" shared:") != std::string::npos || best_fields.find(" master:") != std::string::npos;
}

struct Manifest {
    std::string image;
    std::vector<std::string> args;
    std::string probe_path;
    int probe_port = 0;
    // docker run -v specifications of the volumeMounts, with the configMap's
    // files written to `config_dir` and the /run/ebpf-diskwatch hostPath
    // replaced by `run_dir` (the host's own is not this test's to change).
    std::vector<std::string> volumes;
};

Manifest read_manifest(const std::string &config_dir, const std::string &run_dir)
{
    const auto documents = YAML::LoadAllFromFile(kManifest);
    YAML::Node daemonset, config_map;
    for (const auto &document : documents) {
        if (document["kind"].as<std::string>() == "DaemonSet")
            daemonset = document;
        if (document["kind"].as<std::string>() == "ConfigMap")
            config_map = document;
    }
    REQUIRE(daemonset);
    const auto spec = daemonset["spec"]["template"]["spec"];
    REQUIRE(spec["hostPID"].as<bool>());
    REQUIRE(spec["containers"].size() == 1);
    const auto agent = spec["containers"][0];
    REQUIRE(agent["securityContext"]["privileged"].as<bool>());

    Manifest manifest;
    manifest.image = agent["image"].as<std::string>();
    for (const auto &arg : agent["args"])
        manifest.args.push_back(arg.as<std::string>());
    manifest.probe_path = agent["readinessProbe"]["httpGet"]["path"].as<std::string>();
    const std::string port_name = agent["readinessProbe"]["httpGet"]["port"].as<std::string>();
    // The probe's port: a name of the container's ports, or a number.
    for (const auto &port : agent["ports"])
        if (port["name"].as<std::string>() == port_name)
            manifest.probe_port = port["containerPort"].as<int>();
    if (manifest.probe_port == 0 && port_name.find_first_not_of("0123456789") == std::string::npos)
        manifest.probe_port = std::atoi(port_name.c_str());
    REQUIRE(manifest.probe_port > 0);

    std::map<std::string, YAML::Node> volumes;
    for (const auto &volume : spec["volumes"])
        volumes[volume["name"].as<std::string>()] = YAML::Node(volume);
    for (const auto &mount : agent["volumeMounts"]) {
        const std::string name = mount["name"].as<std::string>();
        const std::string target = mount["mountPath"].as<std::string>();
        REQUIRE(volumes.count(name) == 1);
        const YAML::Node &volume = volumes[name];
        std::string source;
        if (volume["hostPath"]) {
            source = volume["hostPath"]["path"].as<std::string>();
            if (source == "/run/ebpf-diskwatch")
                source = run_dir;
        } else if (volume["configMap"]) {
            REQUIRE(config_map);
            REQUIRE(config_map["metadata"]["name"].as<std::string>() == volume["configMap"]["name"].as<std::string>());
            for (const auto &file : config_map["data"])
                write_file(config_dir + "/" + file.first.as<std::string>(), file.second.as<std::string>());
            source = config_dir;
        } else {
            FAIL("a volume kind this test does not reproduce: " << name);
        }
        std::string options = mount["readOnly"] && mount["readOnly"].as<bool>() ? "ro" : "rw";
        // HostToContainer is rslave: mounts made on the host later show
        // inside. Docker (like the kubelet's runtime) refuses it when the
        // source's mount is private, as / is on some machines (no systemd,
        // which makes it shared): then the mount is a plain rbind, which
        // still holds every mount made before the container starts.
        if (mount["mountPropagation"] && mount["mountPropagation"].as<std::string>() == "HostToContainer") {
            if (shared_or_slave(source))
                options += ",rslave";
            else
                WARN(source << " is a private mount here: " << target
                            << " without HostToContainer propagation (mounts made after the start do not show)");
        }
        manifest.volumes.push_back(source + ":" + target + ":" + options);
    }
    return manifest;
}

}  // namespace

TEST_CASE("the DaemonSet's image builds offline from the .deb and runs as the manifest runs it until ready",
          "[docker][daemonset][bpf]")
{
    if (!bpf_tests_can_run())
        return;
    need_tool("debootstrap", "debootstrap");
    need_tool("dpkg-deb", "dpkg");
    // The image (~100 MB) and its import's temporary copy on the data root.
    auto docker = start_docker_or_skip(1024);
    if (!docker)
        return;

    TempDir dir("dw-daemonset-");
    std::filesystem::create_directories(dir.file("policy"));
    std::filesystem::create_directories(dir.file("run"));
    const Manifest manifest = read_manifest(dir.file("policy"), dir.file("run"));
    INFO("manifest image " << manifest.image << ", probe " << manifest.probe_path << " on " << manifest.probe_port);

    // The recipe, against the private dockerd.
    const std::string deb = build_deb(dir);
    const auto build_started = std::chrono::steady_clock::now();
    std::string built;
    const int status =
        run({kRecipe, "--docker", docker->cli(), "--host", docker->host(), deb, kImageWork}, &built,
            std::chrono::seconds(900));
    const auto build_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - build_started).count();
    INFO("build-image (" << build_seconds << " s):\n" << built);
    REQUIRE(status == 0);
    // Its stdout's last line is the tag (its progress goes to stderr).
    CHECK(has_line(built, manifest.image));
    std::string size;
    REQUIRE(docker->docker({"image", "inspect", "-f", "{{.Size}}", manifest.image}, &size) == 0);
    WARN("image " << manifest.image << " built in " << build_seconds << " s, "
                  << std::atoll(size.c_str()) / (1 << 20) << " MiB");

    // A host filesystem to write to; made before the container, as the
    // node's own filesystems are (later ones reach it through rslave too).
    LoopMount disk(64, "ext4");

    // Nothing else may be answering on the port: the metrics read below must be this container's.
    REQUIRE_FALSE(port_answers(manifest.probe_port));

    const std::string name = "dw-daemonset-" + std::to_string(::getpid());
    // The container goes however the test ends (the daemon's destructor
    // would remove it too; this is the explicit one).
    struct RemoveContainer {
        const DockerDaemon &docker;
        std::string name;
        ~RemoveContainer() { docker.docker({"rm", "-f", "-v", name}, nullptr, std::chrono::seconds(60)); }
    } remove_container{*docker, name};
    // As the kubelet runs the pod: privileged, hostPID; the pod's network is
    // the host's here (the private dockerd has no bridge), so the probe's
    // port is reached on 127.0.0.1.
    std::vector<std::string> run_args = {"run", "-d", "--name", name, "--pid=host", "--network=host"};
    const std::vector<std::string> missing = caps_missing_from_bounding_set();
    if (missing.empty()) {
        run_args.push_back("--privileged");
    } else {
        // --privileged asks runc for every capability; where this process's
        // bounding set lacks some (a sandboxed machine: CAP_SYS_RESOURCE here),
        // runc refuses ("unable to apply caps"). What privileged gives, less
        // those: every other capability, no seccomp or AppArmor profile, no
        // masked /proc paths, every device.
        std::string names;
        for (const auto &cap : missing)
            names += " " + cap;
        WARN("this machine's capability bounding set lacks" << names << ": the container runs with privileged's "
             "settings less those (--cap-add ALL --cap-drop ..., unconfined), not --privileged");
        run_args.insert(run_args.end(), {"--cap-add", "ALL", "--security-opt", "seccomp=unconfined", "--security-opt",
                                         "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                                         "--device-cgroup-rule", "a *:* rwm"});
        for (const auto &cap : missing)
            run_args.insert(run_args.end(), {"--cap-drop", cap});
    }
    for (const auto &volume : manifest.volumes)
        run_args.insert(run_args.end(), {"-v", volume});
    run_args.push_back(manifest.image);
    run_args.insert(run_args.end(), manifest.args.begin(), manifest.args.end());
    std::string output;
    const auto started = std::chrono::steady_clock::now();
    const int ran = docker->docker(run_args, &output);
    {
        INFO("docker run: " << output << "\ndockerd: " << docker->log());
        REQUIRE(ran == 0);
    }
    auto logs = [&] {
        std::string text;
        docker->docker({"logs", "--tail", "60", name}, &text);
        return text;
    };
    auto running = [&] {
        std::string state;
        return docker->docker({"inspect", "-f", "{{.State.Running}}", name}, &state) == 0 &&
               trimmed(state) == "true";
    };

    // Ready as the readinessProbe sees it: GET path on the port answers 200.
    httplib::Client client("127.0.0.1", manifest.probe_port);
    client.set_connection_timeout(2);
    client.set_read_timeout(5);
    std::string metrics;
    bool ready = false;
    while (!ready && std::chrono::steady_clock::now() - started < std::chrono::seconds(90) && running()) {
        if (auto response = client.Get(manifest.probe_path.c_str()); response && response->status == 200) {
            ready = true;
            metrics = response->body;
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
    }
    const auto ready_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    {
        INFO("container output:\n" << logs());
        REQUIRE(ready);
    }
    WARN("ready (GET " << manifest.probe_path << " on :" << manifest.probe_port << " answered 200) "
                       << ready_ms << " ms after docker run");
    CHECK_THAT(metrics, Catch::Contains("ebpf_diskwatch_build_info{"));
    // The agent runs in the host's pid namespace: its pid there is docker's.
    const int pid = docker->pid_of(name);
    REQUIRE(pid > 0);
    CHECK(exe_of(pid) == "ebpf-diskwatch");
    // The run volume is the host's directory: the manifest's --json-socket is there.
    std::string json_socket;
    for (size_t i = 0; i + 1 < manifest.args.size(); ++i)
        if (manifest.args[i] == "--json-socket")
            json_socket = manifest.args[i + 1];
    if (json_socket.rfind("/run/ebpf-diskwatch/", 0) == 0) {
        struct stat st {};
        CHECK(::stat(dir.file("run/" + json_socket.substr(20)).c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
    }

    // A write on the host (by this test, outside the container) shows in
    // the container's /metrics, on the disk's major:minor.
    constexpr long long kBytes = 8 << 20;
    {
        const int fd = ::open((disk.path() + "/written-on-the-host").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                              0600);
        REQUIRE(fd >= 0);
        const std::string block(1 << 16, 'w');
        for (long long done = 0; done < kBytes; done += static_cast<long long>(block.size()))
            REQUIRE(::write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()));
        ::fsync(fd);
        ::close(fd);
    }
    const std::string label = "major_minor=\"" + disk.dev_string() + "\"";
    double written = -1;
    const bool counted = wait_until(
        [&] {
            auto response = client.Get(manifest.probe_path.c_str());
            if (!response || response->status != 200)
                return false;
            metrics = response->body;
            written = sample(metrics, "ebpf_diskwatch_mount_written_bytes_total", label);
            return written >= kBytes;
        },
        std::chrono::seconds(20));
    {
        INFO("written " << written << " on " << label << "\n" << metrics << "\ncontainer output:\n" << logs());
        CHECK(counted);
    }

    // SIGTERM as the kubelet stops a pod, within its grace period (30 s in
    // the manifest); the agent exits 0, and nothing of it is left.
    std::string stopped;
    REQUIRE(docker->docker({"stop", "-t", "30", name}, &stopped, std::chrono::seconds(60)) == 0);
    std::string exit_code;
    REQUIRE(docker->docker({"inspect", "-f", "{{.State.ExitCode}}", name}, &exit_code) == 0);
    {
        INFO("container output:\n" << logs());
        CHECK(trimmed(exit_code) == "0");
    }
    CHECK(exe_of(pid) != "ebpf-diskwatch");
    CHECK_FALSE(port_answers(manifest.probe_port));
    REQUIRE(docker->docker({"rm", "-v", name}, &output) == 0);
    std::string left;
    REQUIRE(docker->docker({"ps", "-aq"}, &left) == 0);
    CHECK(trimmed(left).empty());
    // The image goes with the private daemon's data root; removing it here
    // proves no container still holds it. The debootstrap base stays cached
    // under the build dir (kImageWork) on purpose.
    REQUIRE(docker->docker({"rmi", manifest.image}, &output) == 0);
    REQUIRE(docker->docker({"images", "-q"}, &left) == 0);
    CHECK(trimmed(left).empty());
}
