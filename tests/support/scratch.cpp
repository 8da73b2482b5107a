#include "support/scratch.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "resolve/mountinfo.h"
#include "support/spawn.h"
#include "support/stale_fixtures.h"

namespace diskwatch::test {

namespace {

std::string trim(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

}  // namespace

LoopMount::LoopMount(size_t size_mib, const std::string &fstype)
    : workdir_(make_owned_temp_dir("dw-loop")), image_(workdir_ + "/image"), mount_point_(workdir_ + "/mnt")
{
    ::mkdir(mount_point_.c_str(), 0755);
    {
        std::ofstream image(image_);
    }
    if (::truncate(image_.c_str(), static_cast<off_t>(size_mib) << 20) != 0)
        throw std::runtime_error("truncate image");
    std::string output;
    const std::string mkfs = fstype == "xfs" ? "/sbin/mkfs.xfs" : "/sbin/mkfs.ext4";
    if (run({mkfs, "-q", image_}, &output) != 0)
        throw std::runtime_error(mkfs + " failed: " + output);
    if (run({"/sbin/losetup", "--find", "--show", image_}, &output) != 0)
        throw std::runtime_error("losetup failed: " + output);
    loop_device_ = trim(output);
    if (::mount(loop_device_.c_str(), mount_point_.c_str(), fstype.c_str(), 0, nullptr) != 0) {
        const std::string reason = std::strerror(errno);
        run({"/sbin/losetup", "-d", loop_device_});
        throw std::runtime_error("mount " + loop_device_ + ": " + reason);
    }
    mounted_ = true;
}

LoopMount::~LoopMount()
{
    if (mounted_) {
        for (int attempt = 0; attempt < 50 && ::umount2(mount_point_.c_str(), 0) != 0; ++attempt)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ::umount2(mount_point_.c_str(), MNT_DETACH);
    }
    if (!loop_device_.empty())
        run({"/sbin/losetup", "-d", loop_device_});
    ::unlink(image_.c_str());
    ::rmdir(mount_point_.c_str());
    ::rmdir(workdir_.c_str());
}

void LoopMount::detach()
{
    if (mounted_ && ::umount2(mount_point_.c_str(), MNT_DETACH) == 0)
        mounted_ = false;
}

std::string LoopMount::dev_string() const
{
    struct stat st {};
    ::stat(mount_point_.c_str(), &st);
    return std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
}

TmpfsMount::TmpfsMount(size_t size_kib) : mount_point_(make_owned_temp_dir("dw-tmpfs"))
{
    const std::string options = "size=" + std::to_string(size_kib) + "k";
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, options.c_str()) != 0)
        throw std::runtime_error(std::string("mount tmpfs: ") + std::strerror(errno));
    mounted_ = true;
}

TmpfsMount::~TmpfsMount()
{
    if (mounted_ && ::umount2(mount_point_.c_str(), 0) != 0)
        ::umount2(mount_point_.c_str(), MNT_DETACH);
    ::rmdir(mount_point_.c_str());
}

Cgroup2Child::Cgroup2Child(const std::string &name_prefix)
{
    const auto mounts = MountTable::load();
    const MountEntry *cgroup2 = mounts.find_cgroup2();
    if (!cgroup2)
        throw std::runtime_error("no cgroup v2 hierarchy mounted");
    relative_ = "/" + owned_cgroup_name(name_prefix);
    path_ = cgroup2->mount_point + relative_;
    if (::mkdir(path_.c_str(), 0755) != 0)
        throw std::runtime_error("mkdir " + path_ + ": " + std::strerror(errno));
}

Cgroup2Child::~Cgroup2Child()
{
    // Thaw first (a test may have frozen it), then kill what is left.
    { std::ofstream(path_ + "/cgroup.freeze") << "0"; }
    { std::ofstream(path_ + "/cgroup.kill") << "1"; }
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (::rmdir(path_.c_str()) == 0 || errno == ENOENT)
            return;
        std::ifstream procs(path_ + "/cgroup.procs");
        int pid;
        while (procs >> pid) {
            ::kill(pid, SIGCONT);
            ::kill(pid, SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

uint64_t Cgroup2Child::id() const
{
    struct stat st {};
    ::stat(path_.c_str(), &st);
    return st.st_ino;
}

bool bpf_tests_can_run()
{
    if (::geteuid() == 0)
        return true;
    const char *ci = std::getenv("CI");
    if (ci && std::string(ci) == "true")
        FAIL("BPF integration tests need root; under CI=true they fail instead of skipping");
    WARN("not root: BPF integration test skipped (run as root; under CI=true this fails)");
    return false;
}

TracefsRestore::TracefsRestore()
    : was_mounted_(diskwatch::MountTable::load().find_by_mount_point("/sys/kernel/tracing") != nullptr)
{
    // Says, should this binary be killed before the destructor runs, that
    // the tracefs mount is ours to remove (the stale-fixture sweep reads it).
    if (!was_mounted_)
        marker_ = make_owned_temp_dir("dw-tracefs");
}

TracefsRestore::~TracefsRestore()
{
    if (!was_mounted_)
        ::umount2("/sys/kernel/tracing", MNT_DETACH);
    if (!marker_.empty())
        ::rmdir(marker_.c_str());
}

}  // namespace diskwatch::test
