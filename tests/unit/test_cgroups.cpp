#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "resolve/cgroups.h"

using namespace diskwatch;
namespace fs = std::filesystem;

namespace {

// A directory tree standing in for a cgroup2 mount: on cgroup v2 a cgroup id
// is its directory's inode number, which any filesystem gives us.
struct FakeHierarchy {
    std::string root;
    FakeHierarchy()
    {
        char pattern[] = "/tmp/dw-cgroups-XXXXXX";
        root = ::mkdtemp(pattern);
        fs::create_directories(root + "/system.slice/suricata.service");
        fs::create_directories(root + "/kubepods.slice/pod1");
    }
    ~FakeHierarchy() { fs::remove_all(root); }
    uint64_t inode(const std::string &relative) const
    {
        struct stat st {};
        ::stat((root + relative).c_str(), &st);
        return st.st_ino;
    }
};

}  // namespace

TEST_CASE("cgroup ids resolve to paths relative to the hierarchy root", "[cgroups]")
{
    FakeHierarchy hierarchy;
    CgroupResolver resolver(hierarchy.root);
    CHECK(resolver.path_of(hierarchy.inode("")) == "/");
    CHECK(resolver.path_of(hierarchy.inode("/system.slice/suricata.service")) == "/system.slice/suricata.service");
    CHECK(resolver.id_of("/kubepods.slice/pod1") == hierarchy.inode("/kubepods.slice/pod1"));
    CHECK_FALSE(resolver.id_of("/missing").has_value());
}

TEST_CASE("a cgroup created after the first walk is found by a re-walk", "[cgroups]")
{
    FakeHierarchy hierarchy;
    CgroupResolver resolver(hierarchy.root);
    fs::create_directories(hierarchy.root + "/system.slice/late.service");
    ::usleep(250 * 1000);  // re-walks are rate limited to a few per second
    CHECK(resolver.path_of(hierarchy.inode("/system.slice/late.service")) == "/system.slice/late.service");
    CHECK_FALSE(resolver.path_of(1).has_value());
}

TEST_CASE("a process's cgroup v2 path comes from the 0:: line of /proc/PID/cgroup", "[cgroups]")
{
    char pattern[] = "/tmp/dw-proc-XXXXXX";
    const std::string proc = ::mkdtemp(pattern);
    fs::create_directories(proc + "/42");
    std::ofstream(proc + "/42/cgroup") << "12:blkio:/system.slice\n0::/system.slice/suricata.service\n";
    CHECK(cgroup2_path_of_process(42, proc) == "/system.slice/suricata.service");
    CHECK_FALSE(cgroup2_path_of_process(43, proc).has_value());
    fs::remove_all(proc);
}
