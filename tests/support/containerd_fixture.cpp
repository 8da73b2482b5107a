#include "support/containerd_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/docker_fixture.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"

namespace diskwatch::test {

namespace fs = std::filesystem;

namespace {

bool executable(const std::string &path) { return ::access(path.c_str(), X_OK) == 0; }

std::string find_binary(const char *name)
{
    for (const char *dir : {"/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/"})
        if (executable(std::string(dir) + name))
            return std::string(dir) + name;
    return "";
}

std::string random_hex(size_t digits)
{
    static std::mt19937_64 generator{std::random_device{}()};
    static const char hex[] = "0123456789abcdef";
    std::string text;
    for (size_t i = 0; i < digits; ++i)
        text += hex[generator() % 16];
    return text;
}

std::string read_text(const std::string &path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

ContainerdDaemon::ContainerdDaemon(size_t disk_mib)
    : dir_(make_owned_temp_dir("dw-containerd")), ctr_(find_binary("ctr"))
{
    try {
        const std::string containerd = find_binary("containerd");
        if (containerd.empty() || ctr_.empty() || find_binary("containerd-shim-runc-v2").empty() ||
            find_binary("runc").empty())
            throw std::runtime_error(
                "containerd, ctr, containerd-shim-runc-v2 or runc is not installed (scripts/install-deps.sh --test)");
        disk_ = std::make_unique<LoopMount>(disk_mib, "ext4");
        root_ = dir_ + "/root";
        state_ = dir_ + "/state";
        address_ = dir_ + "/containerd.sock";
        fs::create_directories(root_);
        fs::create_directories(state_);
        cgroup_name_ = owned_cgroup_name("dw-containerd");
        // Its own everything: no /etc/containerd/config.toml, no CRI plugin
        // (it would want CNI and an image store), no debug or metrics listener.
        std::ofstream(dir_ + "/config.toml") << "version = 2\n"
                                             << "root = \"" << root_ << "\"\n"
                                             << "state = \"" << state_ << "\"\n"
                                             << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                                             << "[grpc]\n  address = \"" << address_ << "\"\n"
                                             << "[ttrpc]\n  address = \"" << address_ << ".ttrpc\"\n"
                                             << "[debug]\n  address = \"\"\n  level = \"warn\"\n"
                                             << "[metrics]\n  address = \"\"\n";
        containerd_ = spawn_logged({containerd, "--config", dir_ + "/config.toml"}, dir_ + "/containerd.log");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        for (;;) {
            if (ctr({"version"}, nullptr, std::chrono::seconds(10)) == 0)
                break;
            if (!child_alive(containerd_)) {
                containerd_ = -1;
                throw std::runtime_error("containerd exited at start: " + log());
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("containerd did not answer within 60 s: " + log());
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    } catch (...) {
        tear_down();
        throw;
    }
}

ContainerdDaemon::~ContainerdDaemon()
{
    // Tasks first (their processes and shims go with them), so that
    // containerd's own shutdown has nothing to wait for.
    if (child_alive(containerd_)) {
        for (const auto &container : started_) {
            ctr({"-n", container.ns, "task", "kill", "-s", "KILL", container.id}, nullptr, std::chrono::seconds(10));
            ctr({"-n", container.ns, "task", "rm", "-f", container.id}, nullptr, std::chrono::seconds(20));
            ctr({"-n", container.ns, "container", "rm", container.id}, nullptr, std::chrono::seconds(20));
        }
    }
    tear_down();
}

void ContainerdDaemon::tear_down()
{
    stop_child(containerd_, std::chrono::seconds(20));
    kill_shims();
    remove_owned_cgroup(cgroup_name_);
    unmount_all_below(dir_ + "/");
    if (disk_)
        unmount_all_below(disk_->path() + "/");
    disk_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void ContainerdDaemon::kill_shims()
{
    // A shim outlives containerd by design (it is reparented away from it);
    // ours are those started with our socket's address.
    DIR *proc = ::opendir("/proc");
    if (!proc)
        return;
    while (const dirent *entry = ::readdir(proc)) {
        const int pid = std::atoi(entry->d_name);
        if (pid <= 1 || pid == ::getpid())
            continue;
        std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
        for (char &c : cmdline)
            if (c == '\0')
                c = ' ';
        if (cmdline.find("containerd-shim") != std::string::npos && cmdline.find(address_) != std::string::npos)
            ::kill(pid, SIGKILL);
    }
    ::closedir(proc);
}

int ContainerdDaemon::ctr(const std::vector<std::string> &args, std::string *output,
                          std::chrono::milliseconds timeout) const
{
    std::vector<std::string> argv = {ctr_, "--address", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return diskwatch::test::run(argv, output, timeout);
}

ContainerdDaemon::Container ContainerdDaemon::run(const std::string &ns,
                                                  const std::map<std::string, std::string> &annotations,
                                                  const std::string &script)
{
    Container container;
    container.id = random_hex(64);
    container.ns = ns;
    const std::string pod = random_hex(8) + "-" + random_hex(4) + "-" + random_hex(4) + "-" + random_hex(4) + "-" +
                            random_hex(12);
    container.cgroup = cgroup_top() + "/kubepods/besteffort/pod" + pod + "/" + container.id;
    container.rootfs = disk_->path() + "/rootfs-" + container.id.substr(0, 12);
    write_busybox_rootfs(container.rootfs, 4096);
    std::vector<std::string> argv = {"-n", ns, "run", "-d", "--null-io", "--cgroup", container.cgroup};
    for (const auto &[key, value] : annotations)
        argv.insert(argv.end(), {"--annotation", key + "=" + value});
    argv.insert(argv.end(), {"--rootfs", container.rootfs, container.id, "/bin/sh", "-c", script});
    std::string output;
    started_.push_back(container);  // removed by the destructor even if ctr half-made it
    if (ctr(argv, &output) != 0)
        throw std::runtime_error("ctr run failed: " + output + "\ncontainerd: " + log());
    return container;
}

int ContainerdDaemon::pid_of(const Container &container) const
{
    const std::string text =
        read_text(state_ + "/io.containerd.runtime.v2.task/" + container.ns + "/" + container.id + "/init.pid");
    return std::atoi(text.c_str());
}

bool ContainerdDaemon::running(const Container &container) const
{
    std::string output;
    if (ctr({"-n", container.ns, "task", "ls"}, &output, std::chrono::seconds(10)) != 0)
        return false;
    std::stringstream lines(output);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind(container.id, 0) == 0)
            return line.find("RUNNING") != std::string::npos;
    return false;
}

std::string ContainerdDaemon::log() const
{
    std::string all = read_text(dir_ + "/containerd.log");
    return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

std::unique_ptr<ContainerdDaemon> start_containerd_or_skip(size_t disk_mib)
{
    const char *ci = std::getenv("CI");
    const bool under_ci = ci && std::string(ci) == "true";
    std::string reason;
    if (::geteuid() != 0) {
        reason = "not root";
    } else {
        try {
            return std::make_unique<ContainerdDaemon>(disk_mib);
        } catch (const std::exception &e) {
            reason = e.what();
        }
    }
    if (under_ci)
        FAIL("a private containerd could not be started (under CI=true the containerd tests fail, never skip): "
             << reason);
    WARN("containerd test skipped: a private containerd could not be started: " << reason);
    return nullptr;
}

}  // namespace diskwatch::test
