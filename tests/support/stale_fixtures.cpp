// For Catch::TestEventListenerBase (the listener at the end of this file).
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "support/stale_fixtures.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "actions/pidfd.h"
#include "resolve/mountinfo.h"

namespace diskwatch::test {

namespace fs = std::filesystem;

namespace {

constexpr auto kGoneBound = std::chrono::seconds(10);  // for killed processes to exit, cgroups to empty

std::string read_small_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Writes a cgroup control file with one write(2): what cgroupfs expects.
bool write_control(const std::string &path, const std::string &value)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
    ::close(fd);
    return ok;
}

// Fields of /proc/<pid>/stat after "(comm) ": [0] is field 3 (state),
// [19] is field 22 (start time in clock ticks). Empty when the pid is gone.
std::vector<std::string> stat_fields(pid_t pid, int *open_errno)
{
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *open_errno = errno;
        return {};
    }
    char buffer[1024];
    const ssize_t got = ::read(fd, buffer, sizeof(buffer) - 1);
    *open_errno = got < 0 ? errno : 0;
    ::close(fd);
    if (got <= 0)
        return {};
    const std::string text(buffer, static_cast<size_t>(got));
    const auto close = text.rfind(')');
    if (close == std::string::npos)
        return {};
    std::istringstream rest(text.substr(close + 1));
    std::vector<std::string> fields;
    for (std::string field; rest >> field;)
        fields.push_back(field);
    return fields;
}

std::string tag_of(pid_t pid)
{
    int open_errno = 0;
    const auto fields = stat_fields(pid, &open_errno);
    if (fields.size() < 20)
        throw std::runtime_error("cannot read the start time of pid " + std::to_string(pid) + " from /proc/" +
                                 std::to_string(pid) + "/stat: " + std::strerror(open_errno));
    return std::to_string(pid) + "." + fields[19];
}

bool is_owner_tag(const std::string &text)
{
    const auto dot = text.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == text.size())
        return false;
    const auto digits = [](const std::string &part) {
        return std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    return digits(text.substr(0, dot)) && digits(text.substr(dot + 1));
}

// The owner tag in a fixture's name "dw-...-<pid>.<start>-<unique>", or
// nullopt when the name is not one of ours (an older format, another tool's).
std::optional<std::string> owner_in_name(const std::string &name)
{
    if (name.rfind("dw-", 0) != 0)
        return std::nullopt;
    const auto last = name.rfind('-');
    if (last == std::string::npos || last < 3)
        return std::nullopt;
    const auto before = name.rfind('-', last - 1);
    if (before == std::string::npos || before < 2)
        return std::nullopt;
    std::string tag = name.substr(before + 1, last - before - 1);
    if (!is_owner_tag(tag))
        return std::nullopt;
    return tag;
}

// DW_TEST_OWNER in a process's environment (as it was exec'd), if any.
std::optional<std::string> owner_in_environment(pid_t pid)
{
    const std::string environment = read_small_file("/proc/" + std::to_string(pid) + "/environ");
    const std::string key = std::string(kOwnerEnvironment) + "=";
    for (size_t at = 0; at < environment.size();) {
        const size_t end = std::min(environment.find('\0', at), environment.size());
        if (environment.compare(at, key.size(), key) == 0)
            return environment.substr(at + key.size(), end - at - key.size());
        at = end + 1;
    }
    return std::nullopt;
}

bool is_under(const std::string &path, const std::string &dir)
{
    return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

// Every directory of a cgroup subtree, deepest first.
std::vector<std::string> cgroup_subtree_deepest_first(const std::string &root)
{
    std::vector<std::string> dirs{root};
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec))
            dirs.push_back(it->path().string());
    std::sort(dirs.begin(), dirs.end(), [](const std::string &a, const std::string &b) { return a.size() > b.size(); });
    return dirs;
}

bool cgroup_populated(const std::string &cgroup)
{
    return read_small_file(cgroup + "/cgroup.events").find("populated 1") != std::string::npos;
}

bool mounted_under(const std::string &dir)
{
    const auto mounts = MountTable::load();
    for (const auto &entry : mounts.entries())
        if (entry.mount_point == dir || is_under(entry.mount_point, dir))
            return true;
    return false;
}

// Unmounts whatever is mounted at `path` (stacked mounts too): a plain
// umount2 first, retried while busy, then a lazy detach.
int unmount_all_at(const std::string &path, std::string *failure)
{
    int unmounted = 0;
    for (int busy = 0; unmounted < 16;) {
        if (::umount2(path.c_str(), UMOUNT_NOFOLLOW) == 0) {
            ++unmounted;
            continue;
        }
        if (errno == EINVAL || errno == ENOENT)
            return unmounted;  // not (or no longer) a mount point
        if (errno == EBUSY && ++busy < 20) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        if (::umount2(path.c_str(), UMOUNT_NOFOLLOW | MNT_DETACH) == 0) {
            ++unmounted;
            continue;
        }
        *failure = "umount2 " + path + ": " + std::strerror(errno);
        return unmounted;
    }
    return unmounted;
}

}  // namespace

std::string owner_tag()
{
    return tag_of(::getpid());
}

bool owner_is_gone(const std::string &tag)
{
    if (!is_owner_tag(tag))
        return false;
    const auto dot = tag.find('.');
    const long pid = std::strtol(tag.substr(0, dot).c_str(), nullptr, 10);
    if (pid <= 0)
        return false;
    int open_errno = 0;
    const auto fields = stat_fields(static_cast<pid_t>(pid), &open_errno);
    if (fields.empty())
        return open_errno == ENOENT || open_errno == ESRCH;  // any other error proves nothing
    if (fields.size() < 20)
        return false;
    if (fields[0] == "Z" || fields[0] == "X")
        return true;  // exited, not yet reaped
    return fields[19] != tag.substr(dot + 1);  // the pid now belongs to a later process
}

std::string make_owned_temp_dir(const std::string &prefix)
{
    std::string pattern = "/tmp/" + prefix + "-" + owner_tag() + "-XXXXXX";
    if (!::mkdtemp(pattern.data()))
        throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    return pattern;
}

std::string owned_cgroup_name(const std::string &prefix)
{
    static unsigned counter = 0;
    const auto unique = std::chrono::steady_clock::now().time_since_epoch().count() % 1000000;
    return prefix + "-" + owner_tag() + "-" + std::to_string(unique) + std::to_string(counter++);
}

void mark_children_as_ours()
{
    ::setenv(kOwnerEnvironment, owner_tag().c_str(), 1);
}

bool SweepReport::empty() const
{
    return processes_killed.empty() && unmounted.empty() && loop_devices_detached.empty() &&
           directories_removed.empty() && cgroups_removed.empty() && !tracefs_unmounted && failures.empty();
}

std::string SweepReport::summary() const
{
    std::ostringstream text;
    text << "stale test fixtures (their test binary was killed) swept:";
    text << " " << processes_killed.size() << " processes killed,";
    text << " " << unmounted.size() << " mounts unmounted,";
    text << " " << loop_devices_detached.size() << " loop devices detached,";
    text << " " << directories_removed.size() << " directories removed,";
    text << " " << cgroups_removed.size() << " cgroups removed";
    if (tracefs_unmounted)
        text << ", tracefs unmounted";
    text << "\n";
    for (const auto &failure : failures)
        text << "  could not: " << failure << "\n";
    return text.str();
}

SweepReport sweep_stale_fixtures(const SweepPlaces &places)
{
    SweepReport report;
    if (::geteuid() != 0)
        return report;
    const pid_t self = ::getpid();

    // What is stale: /tmp/dw-* directories and cgroup v2 children whose name
    // carries a gone owner, and processes whose DW_TEST_OWNER is gone.
    std::vector<std::string> stale_dirs;
    bool live_tracefs_marker = false;
    bool stale_tracefs_marker = false;
    if (DIR *tmp = ::opendir(places.tmp.c_str())) {
        while (const dirent *entry = ::readdir(tmp)) {
            const std::string name = entry->d_name;
            const auto owner = owner_in_name(name);
            if (!owner)
                continue;
            const std::string path = places.tmp + "/" + name;
            struct stat st {};
            if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
                continue;  // only real directories root made: what the root test binaries make
            const bool gone = owner_is_gone(*owner);
            if (name.rfind("dw-tracefs-", 0) == 0)
                (gone ? stale_tracefs_marker : live_tracefs_marker) = true;
            if (gone)
                stale_dirs.push_back(path);
        }
        ::closedir(tmp);
    }

    std::string cgroup2 = places.cgroup2;
    // The same names in the cgroup v1 controllers of a hybrid host: a
    // private dockerd (support/docker_fixture.h) makes its containers' cgroups
    // in every hierarchy below the owned parent. Only with the real places.
    std::vector<std::string> stale_v1_cgroups;
    if (cgroup2.empty()) {
        const auto mounts = MountTable::load();
        if (const MountEntry *entry = mounts.find_cgroup2())
            cgroup2 = entry->mount_point;
        for (const auto &entry : mounts.entries()) {
            if (entry.fstype != "cgroup")
                continue;
            std::error_code ec;
            for (fs::directory_iterator it(entry.mount_point, ec), end; !ec && it != end; it.increment(ec)) {
                const auto owner = owner_in_name(it->path().filename().string());
                if (owner && it->is_directory(ec) && owner_is_gone(*owner))
                    stale_v1_cgroups.push_back(it->path().string());
            }
        }
    }
    std::vector<std::string> stale_cgroups;
    if (!cgroup2.empty()) {
        std::error_code ec;
        for (fs::directory_iterator it(cgroup2, ec), end; !ec && it != end; it.increment(ec)) {
            const auto owner = owner_in_name(it->path().filename().string());
            if (owner && it->is_directory(ec) && owner_is_gone(*owner))
                stale_cgroups.push_back(it->path().string());
        }
    }

    std::vector<Pidfd> stale_processes;
    if (DIR *proc = ::opendir("/proc")) {
        while (const dirent *entry = ::readdir(proc)) {
            const pid_t pid = static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10));
            if (pid <= 0 || pid == self)
                continue;
            const auto owner = owner_in_environment(pid);
            if (!owner || !owner_is_gone(*owner))
                continue;
            std::string error;
            auto pidfd = Pidfd::open(pid, "", 0, &error);
            // The pid is pinned now: check again that it is the process we read.
            if (pidfd && owner_in_environment(pid) == owner)
                stale_processes.push_back(std::move(*pidfd));
        }
        ::closedir(proc);
    }

    // Nothing is left stopped or frozen: thaw, SIGCONT, then kill.
    for (const auto &cgroup : stale_cgroups)
        for (const auto &dir : cgroup_subtree_deepest_first(cgroup))
            write_control(dir + "/cgroup.freeze", "0");
    for (const auto &process : stale_processes)
        process.signal(SIGCONT);
    for (const auto &process : stale_processes) {
        std::string error;
        if (process.signal(SIGKILL, &error) || errno == ESRCH)
            report.processes_killed.push_back(process.pid());
        else
            report.failures.push_back("kill pid " + std::to_string(process.pid()) + ": " + error);
    }
    for (const auto &cgroup : stale_cgroups)
        write_control(cgroup + "/cgroup.kill", "1");
    const auto deadline = std::chrono::steady_clock::now() + kGoneBound;
    const auto all_gone = [&] {
        return std::all_of(stale_processes.begin(), stale_processes.end(), [](const Pidfd &p) { return p.exited(); }) &&
               std::none_of(stale_cgroups.begin(), stale_cgroups.end(), cgroup_populated);
    };
    while (!all_gone() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));

    // Mounts under the stale directories, deepest first.
    std::vector<std::string> mount_points;
    const auto mounts = MountTable::load();
    for (const auto &entry : mounts.entries())
        for (const auto &dir : stale_dirs)
            if (entry.mount_point == dir || is_under(entry.mount_point, dir))
                mount_points.push_back(entry.mount_point);
    std::sort(mount_points.begin(), mount_points.end(),
              [](const std::string &a, const std::string &b) { return a.size() > b.size(); });
    mount_points.erase(std::unique(mount_points.begin(), mount_points.end()), mount_points.end());
    for (const auto &mount_point : mount_points) {
        std::string failure;
        if (unmount_all_at(mount_point, &failure) > 0)
            report.unmounted.push_back(mount_point);
        if (!failure.empty())
            report.failures.push_back(failure);
    }

    // Loop devices backed by an image in a stale directory (also when the
    // directory or the image is gone already: "(deleted)").
    if (DIR *block = ::opendir("/sys/block")) {
        while (const dirent *entry = ::readdir(block)) {
            const std::string device = entry->d_name;
            if (device.rfind("loop", 0) != 0)
                continue;
            std::string backing = read_small_file("/sys/block/" + device + "/loop/backing_file");
            while (!backing.empty() && backing.back() == '\n')
                backing.pop_back();
            const std::string deleted = " (deleted)";
            if (backing.size() > deleted.size() && backing.compare(backing.size() - deleted.size(), deleted.size(), deleted) == 0)
                backing.resize(backing.size() - deleted.size());
            if (!is_under(backing, places.tmp))
                continue;
            const std::string top = backing.substr(places.tmp.size() + 1, backing.find('/', places.tmp.size() + 1) -
                                                                              places.tmp.size() - 1);
            const auto owner = owner_in_name(top);
            if (!owner || !owner_is_gone(*owner))
                continue;
            const std::string node = "/dev/" + device;
            const int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && ::ioctl(fd, LOOP_CLR_FD, 0) == 0)
                report.loop_devices_detached.push_back(node + " (" + backing + ")");
            else if (errno != ENXIO)  // ENXIO: another sweep detached it first
                report.failures.push_back("LOOP_CLR_FD " + node + " (" + backing + "): " + std::strerror(errno));
            if (fd >= 0)
                ::close(fd);
        }
        ::closedir(block);
    }

    // tracefs: a gone test found it unmounted and forced the tracepoint hook
    // family, which mounts it; put the host back, unless a live test did the same.
    if (stale_tracefs_marker && !live_tracefs_marker &&
        MountTable::load().find_by_mount_point(places.tracefs) != nullptr) {
        if (::umount2(places.tracefs.c_str(), UMOUNT_NOFOLLOW) == 0)
            report.tracefs_unmounted = true;
        else if (errno != EINVAL)
            report.failures.push_back("umount2 " + places.tracefs + ": " + std::strerror(errno));
    }

    // The directories, once nothing is mounted below them (remove_all would
    // otherwise reach into a mounted filesystem).
    for (const auto &dir : stale_dirs) {
        if (mounted_under(dir)) {
            report.failures.push_back("remove " + dir + ": something is still mounted below it");
            continue;
        }
        std::error_code ec;
        fs::remove_all(dir, ec);
        if (!ec)
            report.directories_removed.push_back(dir);
        else if (ec != std::errc::no_such_file_or_directory)
            report.failures.push_back("remove " + dir + ": " + ec.message());
    }

    for (const auto &cgroup : stale_cgroups) {
        bool removed = true;
        for (const auto &dir : cgroup_subtree_deepest_first(cgroup))
            if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
                report.failures.push_back("rmdir " + dir + ": " + std::strerror(errno));
                removed = false;
                break;
            }
        if (removed)
            report.cgroups_removed.push_back(cgroup);
    }
    // v1 copies: their processes went with the v2 cgroup.kill above (the
    // same processes), so they are empty by now.
    for (const auto &cgroup : stale_v1_cgroups) {
        bool removed = true;
        for (const auto &dir : cgroup_subtree_deepest_first(cgroup))
            if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
                report.failures.push_back("rmdir " + dir + ": " + std::strerror(errno));
                removed = false;
                break;
            }
        if (removed)
            report.cgroups_removed.push_back(cgroup);
    }
    return report;
}

}  // namespace diskwatch::test

namespace {

// Once per test binary run, before any test: mark what this run starts, and
// sweep what killed runs left behind.
struct StaleFixtureSweep : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testRunStarting(Catch::TestRunInfo const &) override
    {
        diskwatch::test::mark_children_as_ours();
        const auto report = diskwatch::test::sweep_stale_fixtures();
        if (!report.empty())
            std::fputs(report.summary().c_str(), stderr);
    }
};

}  // namespace

CATCH_REGISTER_LISTENER(StaleFixtureSweep)
