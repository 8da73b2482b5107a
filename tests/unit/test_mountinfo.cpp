#include <catch2/catch.hpp>

#include "resolve/mountinfo.h"

using namespace diskwatch;

TEST_CASE("mountinfo lines parse into mount entries", "[mountinfo]")
{
    size_t skipped = 0;
    const auto entries =
        parse_mountinfo("50 27 7:0 / /var/lib/my\\040data rw,noatime shared:9 - ext4 /dev/loop0 rw,errors=remount-ro\n",
                        &skipped);
    REQUIRE(entries.size() == 1);
    CHECK(skipped == 0);
    const auto &entry = entries[0];
    CHECK(entry.mount_id == 50);
    CHECK(entry.parent_id == 27);
    CHECK(entry.dev == DeviceNumber{7, 0});
    CHECK(entry.root == "/");
    CHECK(entry.mount_point == "/var/lib/my data");  // \040 decoded
    CHECK(entry.fstype == "ext4");
    CHECK(entry.source == "/dev/loop0");
    CHECK(entry.mount_options == std::vector<std::string>{"rw", "noatime"});
    CHECK(entry.super_options == std::vector<std::string>{"rw", "errors=remount-ro"});
}

TEST_CASE("mountinfo without optional fields, and malformed lines, are handled", "[mountinfo]")
{
    size_t skipped = 0;
    const auto entries = parse_mountinfo("1 2 3:4 / /a rw - ext4 /dev/x rw\n"
                                         "garbage\n"
                                         "1 2 notadev / /b rw - ext4 /dev/y rw\n"
                                         "1 2 3:5 / /c rw no-separator ext4\n",
                                         &skipped);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].mount_point == "/a");
    CHECK(skipped == 3);
}

TEST_CASE("the mount table finds the cgroup v2 mount and devices, on a hybrid host fixture", "[mountinfo]")
{
    const auto table = MountTable::load(std::string(DW_FIXTURES_DIR) + "/mountinfo-hybrid.txt");
    REQUIRE(table.entries().size() == 10);

    const MountEntry *cgroup2 = table.find_cgroup2();
    REQUIRE(cgroup2);
    CHECK(cgroup2->mount_point == "/sys/fs/cgroup/unified");

    // The full mount of a filesystem wins over a bind mount of a subdirectory.
    const MountEntry *loop = table.find_by_device({7, 0});
    REQUIRE(loop);
    CHECK(loop->mount_point == "/var/lib/my data");

    // A later mount on the same path hides the earlier one.
    const MountEntry *log = table.find_by_mount_point("/var/log");
    REQUIRE(log);
    CHECK(log->fstype == "tmpfs");
    CHECK_FALSE(table.is_visible(*table.find_by_device({0, 50})));
    CHECK(table.find_by_device({9, 9}) == nullptr);
}

TEST_CASE("device numbers convert between the kernel's dev_t and major:minor", "[mountinfo]")
{
    const DeviceNumber dev = DeviceNumber::from_kernel((259u << 20) | 3u);
    CHECK(dev.major == 259);
    CHECK(dev.minor == 3);
    CHECK(dev.to_kernel() == ((259u << 20) | 3u));
    CHECK(dev.to_string() == "259:3");
}
