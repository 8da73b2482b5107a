#include "support/docker_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "resolve/mountinfo.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"

extern char **environ;

namespace diskwatch::test {

namespace fs = std::filesystem;

namespace {

bool executable(const std::string &path) { return ::access(path.c_str(), X_OK) == 0; }

// Debian's CLI first: /usr/local/bin/docker (28.x) may come first in PATH
// here; either works, since every call names the socket with -H.
std::string find_docker_cli()
{
    if (executable("/usr/bin/docker"))
        return "/usr/bin/docker";
    if (const char *path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        for (std::string dir; std::getline(dirs, dir, ':');)
            if (!dir.empty() && executable(dir + "/docker"))
                return dir + "/docker";
    }
    return "";
}

std::string find_dockerd()
{
    for (const char *path : {"/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"})
        if (executable(path))
            return path;
    return "";
}

std::string trim(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
        text.pop_back();
    return text;
}

bool alive(pid_t pid) { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }

// Waits for our child to exit; true when it did.
bool reap_within(pid_t pid, std::chrono::milliseconds bound)
{
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
        const pid_t got = ::waitpid(pid, nullptr, WNOHANG);
        if (got == pid || (got < 0 && errno == ECHILD))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

void write_control(const std::string &path, const std::string &value)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    [[maybe_unused]] const ssize_t n = ::write(fd, value.data(), value.size());
    ::close(fd);
}

// rmdir of every directory under `top`, deepest first, then of `top`: how a
// cgroup tree goes (cgroupfs has no recursive removal). True when `top` is gone.
bool rmdir_tree(const std::string &top)
{
    std::error_code ec;
    std::vector<std::string> dirs;
    for (fs::recursive_directory_iterator it(top, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec))
            dirs.push_back(it->path().string());
    std::sort(dirs.begin(), dirs.end(), [](const auto &a, const auto &b) { return a.size() > b.size(); });
    for (const auto &dir : dirs)
        ::rmdir(dir.c_str());
    return ::rmdir(top.c_str()) == 0 || errno == ENOENT;
}

}  // namespace

pid_t spawn_logged(const std::vector<std::string> &argv, const std::string &log_path)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char *> args;
    for (const auto &arg : argv)
        args.push_back(const_cast<char *>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv.at(0).c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw std::runtime_error("posix_spawn " + argv.at(0) + ": " + std::strerror(rc));
    return pid;
}

bool child_alive(pid_t pid) { return alive(pid); }

void stop_child(pid_t &pid, std::chrono::seconds grace)
{
    if (pid <= 0)
        return;
    ::kill(pid, SIGTERM);
    if (!reap_within(pid, grace)) {
        ::kill(pid, SIGKILL);
        reap_within(pid, std::chrono::seconds(10));
    }
    pid = -1;
}

void remove_owned_cgroup(const std::string &cgroup_name)
{
    if (cgroup_name.empty())
        return;
    const auto mounts = MountTable::load();
    // What survived the daemon (a container's processes if it was killed):
    // cgroup.kill on the v2 parent takes the whole subtree.
    if (const MountEntry *v2 = mounts.find_cgroup2()) {
        const std::string top = v2->mount_point + "/" + cgroup_name;
        write_control(top + "/cgroup.kill", "1");
        for (int i = 0; i < 100 && fs::exists(top); ++i) {
            if (rmdir_tree(top))
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    // The v1 controllers' copies of the same tree (hybrid hosts): empty by now.
    for (const auto &entry : mounts.entries()) {
        if (entry.fstype != "cgroup")
            continue;
        rmdir_tree(entry.mount_point + "/" + cgroup_name);
    }
}

void unmount_all_below(const std::string &path)
{
    // Deepest first: overlays under a data root, netns files under an exec
    // root, rootfs binds in bundles; a lazy detach for what is still busy.
    std::vector<std::string> below;
    const auto mounts = MountTable::load();  // alive through the loop
    for (const auto &entry : mounts.entries())
        if (entry.mount_point.rfind(path, 0) == 0)
            below.push_back(entry.mount_point);
    std::sort(below.begin(), below.end(), [](const auto &a, const auto &b) { return a.size() > b.size(); });
    for (const auto &mount_point : below)
        if (::umount2(mount_point.c_str(), 0) != 0)
            ::umount2(mount_point.c_str(), MNT_DETACH);
}

void write_busybox_rootfs(const std::string &rootfs, size_t lower_file_bytes)
{
    fs::create_directories(rootfs + "/bin");
    for (const char *dir : {"/etc", "/tmp", "/data", "/proc", "/sys", "/dev"})
        fs::create_directories(rootfs + dir);
    fs::copy_file("/bin/busybox", rootfs + "/bin/busybox", fs::copy_options::overwrite_existing);
    for (const char *applet : {"sh", "dd", "cat", "ls", "sleep", "true", "rm", "head", "sync", "stat", "wc"}) {
        std::error_code ec;
        fs::create_symlink("busybox", rootfs + "/bin/" + applet, ec);
    }
    std::ofstream(rootfs + "/etc/lower.txt", std::ios::binary) << std::string(lower_file_bytes, 'L');
}

DockerDaemon::DockerDaemon(size_t data_root_mib)
    : dir_(make_owned_temp_dir("dw-docker")), cli_(find_docker_cli())
{
    try {
        const std::string dockerd = find_dockerd();
        if (dockerd.empty() || cli_.empty())
            throw std::runtime_error("dockerd or the docker CLI is not installed (scripts/install-deps.sh --test)");
        disk_ = std::make_unique<LoopMount>(data_root_mib, "ext4");
        ::mkdir(data_root().c_str(), 0711);
        ::mkdir((dir_ + "/exec").c_str(), 0700);
        host_ = "unix://" + dir_ + "/docker.sock";
        cgroup_name_ = owned_cgroup_name("dw-docker");
        // The cgroupfs driver's parent: the last component "docker" keeps the
        // container's cgroup path in the /docker/<id> form Docker's default has.
        cgroup_parent_ = "/" + cgroup_name_ + "/docker";
        const std::vector<std::string> argv = {dockerd,
                                               "--data-root=" + data_root(),
                                               "--exec-root=" + dir_ + "/exec",
                                               "--pidfile=" + dir_ + "/dockerd.pid",
                                               "-H", host_,
                                               "--iptables=false", "--ip6tables=false", "--bridge=none",
                                               "--ip-forward=false", "--ip-masq=false",
                                               "--storage-driver=overlay2",
                                               "--cgroup-parent=" + cgroup_parent_,
                                               "--exec-opt=native.cgroupdriver=cgroupfs",
                                               "--log-level=warn",
                                               // its own config file: none (not /etc/docker/daemon.json)
                                               "--config-file=" + dir_ + "/daemon.json"};
        std::ofstream(dir_ + "/daemon.json") << "{}\n";
        // dockerd's log to a file (a pipe nobody reads would block it).
        dockerd_ = spawn_logged(argv, dir_ + "/dockerd.log");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        for (;;) {
            std::string out;
            if (docker({"version", "--format", "{{.Server.Version}}"}, &out, std::chrono::seconds(10)) == 0)
                break;
            if (!alive(dockerd_)) {
                dockerd_ = -1;
                throw std::runtime_error("dockerd exited at start: " + log());
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("dockerd did not answer within 60 s: " + log());
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    } catch (...) {
        stop_daemon();
        remove_cgroups();
        if (disk_)
            unmount_below(disk_->path() + "/");
        unmount_below(dir_ + "/");
        disk_.reset();
        std::error_code ec;
        fs::remove_all(dir_, ec);
        throw;
    }
}

DockerDaemon::~DockerDaemon()
{
    // Containers first (their processes, overlays and shims go with them),
    // so that dockerd's own shutdown has nothing to wait for.
    if (alive(dockerd_)) {
        std::string ids;
        if (docker({"ps", "-aq", "--no-trunc"}, &ids, std::chrono::seconds(30)) == 0) {
            std::vector<std::string> rm = {"rm", "-f", "-v"};
            std::stringstream lines(ids);
            for (std::string id; std::getline(lines, id);)
                if (!trim(id).empty())
                    rm.push_back(trim(id));
            if (rm.size() > 3)
                docker(rm, nullptr, std::chrono::seconds(60));
        }
    }
    stop_daemon();
    remove_cgroups();
    unmount_below(disk_->path() + "/");
    unmount_below(dir_ + "/");
    disk_.reset();  // unmounts the data root's disk, detaches the loop device
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

int DockerDaemon::docker(const std::vector<std::string> &args, std::string *output,
                         std::chrono::milliseconds timeout) const
{
    std::vector<std::string> argv = {cli_, "-H", host_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, output, timeout);
}

void DockerDaemon::stop_daemon()
{
    stop_child(dockerd_, std::chrono::seconds(30));
}

void DockerDaemon::remove_cgroups() { remove_owned_cgroup(cgroup_name_); }

void DockerDaemon::unmount_below(const std::string &path) { unmount_all_below(path); }

void DockerDaemon::import_busybox(const std::string &name, size_t lower_file_bytes)
{
    const std::string rootfs = dir_ + "/rootfs";
    write_busybox_rootfs(rootfs, lower_file_bytes);
    const std::string tar = dir_ + "/rootfs.tar";
    std::string output;
    if (run({"/bin/tar", "-C", rootfs, "-cf", tar, "."}, &output) != 0)
        throw std::runtime_error("tar of the busybox root failed: " + output);
    if (docker({"import", tar, name}, &output) != 0)
        throw std::runtime_error("docker import failed: " + output);
    fs::remove_all(rootfs);
    fs::remove(tar);
}

std::string DockerDaemon::run_detached(const std::vector<std::string> &args)
{
    std::vector<std::string> argv = {"run", "-d", "--network", "none"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    if (docker(argv, &output) != 0)
        throw std::runtime_error("docker run failed: " + output + "\n" + log());
    // The id is the line of 64 hex digits (warnings may come with it: the
    // output holds stderr too).
    std::stringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        line = trim(line);
        if (line.size() == 64 && line.find_first_not_of("0123456789abcdef") == std::string::npos)
            return line;
    }
    throw std::runtime_error("docker run printed no container id: " + output);
}

std::string DockerDaemon::compose_path()
{
    for (const char *path : {"/usr/bin/docker-compose", "/usr/local/bin/docker-compose"})
        if (executable(path))
            return path;
    return "";
}

int DockerDaemon::compose(const std::string &project, const std::string &yaml, const std::vector<std::string> &args,
                          std::string *output) const
{
    const std::string file = dir_ + "/" + project + ".yml";
    std::ofstream(file) << yaml;
    std::vector<std::string> argv = {compose_path(), "-H", host_, "-p", project, "-f", file};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, output, std::chrono::seconds(180));
}

std::string DockerDaemon::compose_container(const std::string &project, const std::string &service) const
{
    std::string output;
    if (docker({"ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=" + project, "--filter",
                "label=com.docker.compose.service=" + service},
               &output) != 0)
        return "";
    output = trim(output);
    return output.substr(0, output.find('\n'));
}

int DockerDaemon::pid_of(const std::string &container) const
{
    std::string output;
    if (docker({"inspect", "-f", "{{.State.Pid}}", container}, &output) != 0)
        return 0;
    return std::atoi(trim(output).c_str());
}

std::string DockerDaemon::log() const
{
    std::ifstream in(dir_ + "/dockerd.log");
    std::stringstream text;
    text << in.rdbuf();
    std::string all = text.str();
    return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

std::unique_ptr<DockerDaemon> start_docker_or_skip(size_t data_root_mib)
{
    const char *ci = std::getenv("CI");
    const bool under_ci = ci && std::string(ci) == "true";
    std::string reason;
    if (::geteuid() != 0) {
        reason = "not root";
    } else {
        try {
            return std::make_unique<DockerDaemon>(data_root_mib);
        } catch (const std::exception &e) {
            reason = e.what();
        }
    }
    if (under_ci)
        FAIL("a private dockerd could not be started (under CI=true the Docker tests fail, never skip): " << reason);
    WARN("Docker test skipped: a private dockerd could not be started: " << reason);
    return nullptr;
}

}  // namespace diskwatch::test
