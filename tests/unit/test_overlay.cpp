// Overlay attribution from mountinfo (resolve/overlay.h): the upper layer's
// path, unescaped; its device through a fake stat; and what is hidden from
// the mount list by default (docs/cli.md, --all-mounts).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "resolve/mountinfo.h"
#include "resolve/overlay.h"

using namespace diskwatch;

namespace {

MountTable docker_table()
{
    std::ifstream in(std::string(DW_FIXTURES_DIR) + "/mountinfo-docker.txt");
    std::stringstream text;
    text << in.rdbuf();
    size_t skipped = 0;
    auto entries = parse_mountinfo(text.str(), &skipped);
    REQUIRE(skipped == 0);
    REQUIRE(entries.size() == 10);
    return MountTable(std::move(entries));
}

uint32_t kdev(uint32_t major, uint32_t minor) { return DeviceNumber {major, minor}.to_kernel(); }

const MountEntry &at(const MountTable &table, const std::string &mount_point)
{
    const MountEntry *entry = table.find_by_mount_point(mount_point);
    REQUIRE(entry != nullptr);
    return *entry;
}

// A stat(2) that knows the fixture's directories.
std::optional<uint32_t> fake_device_of(const std::string &path)
{
    if (path == "/var/lib/docker/overlay2/0123abcd/diff")
        return kdev(8, 1);
    if (path == "/srv/docker data/overlay2/odd,name/diff")
        return kdev(7, 3);
    return std::nullopt;
}

}  // namespace

TEST_CASE("overlay upperdir is read from the super options, escapes undone", "[mountinfo][overlay]")
{
    const auto table = docker_table();
    CHECK(overlay_upperdir(at(table, "/var/lib/docker/overlay2/0123abcd/merged")) ==
          std::optional<std::string>("/var/lib/docker/overlay2/0123abcd/diff"));
    // \040 in the path and \054 (a comma, which would otherwise split the option list)
    CHECK(overlay_upperdir(at(table, "/srv/docker data/overlay2/feed/merged")) ==
          std::optional<std::string>("/srv/docker data/overlay2/odd,name/diff"));
    // an overlay without an upper layer, and a filesystem that is not overlay
    CHECK_FALSE(overlay_upperdir(at(table, "/mnt/lower-only")).has_value());
    CHECK_FALSE(overlay_upperdir(at(table, "/")).has_value());
    CHECK(decode_mountinfo_escapes("a\\054b\\075c\\134d\\040e") == "a,b=c\\d e");
    // As the kernel shows a comma in a layer path: overlayfs takes it as "\," and shows it so,
    // and mountinfo escapes both bytes (hostile review of issue 15).
    const auto entries = parse_mountinfo(
        "303 61 0:55 / /mnt/m rw shared:1 - overlay overlay rw,lowerdir=/l,"
        "upperdir=/tmp/we\\040ird\\134\\054dir=x/u,workdir=/tmp/we\\040ird\\134\\054dir=x/w\n");
    REQUIRE(entries.size() == 1);
    CHECK(overlay_upperdir(entries[0]) == std::optional<std::string>("/tmp/we ird,dir=x/u"));
    CHECK(decode_mountinfo_escapes("trailing\\05") == "trailing\\05");  // cut escape left as is
}

TEST_CASE("overlay devices count against the filesystem of their upper layer", "[mountinfo][overlay]")
{
    const auto table = docker_table();
    OverlayAttribution overlays(fake_device_of);
    overlays.reload(table);
    // Docker's default data root on /, and a data root on its own disk with escapes
    CHECK(overlays.target(kdev(0, 52)) == kdev(8, 1));
    CHECK(overlays.target(kdev(0, 54)) == kdev(7, 3));
    // no upper layer, or one that cannot be stat'ed: the overlay itself, no crash
    CHECK(overlays.target(kdev(0, 55)) == kdev(0, 55));
    CHECK(overlays.target(kdev(0, 56)) == kdev(0, 56));
    // not overlays at all
    CHECK(overlays.target(kdev(8, 1)) == kdev(8, 1));
    CHECK(overlays.target(kdev(0, 53)) == kdev(0, 53));
    CHECK(overlays.size() == 2);
}

TEST_CASE("an upper layer on a device with no mount here keeps the overlay", "[mountinfo][overlay]")
{
    const auto table = docker_table();
    OverlayAttribution overlays([](const std::string &) -> std::optional<uint32_t> { return kdev(9, 9); });
    overlays.reload(table);
    CHECK(overlays.target(kdev(0, 52)) == kdev(0, 52));
    CHECK(overlays.size() == 0);
}

TEST_CASE("a gone overlay keeps its target while its device has counters", "[mountinfo][overlay]")
{
    const auto table = docker_table();
    OverlayAttribution overlays(fake_device_of);
    overlays.reload(table);
    // Both containers stop: their overlays leave the table. Their bytes may
    // still be read after that (a container that wrote and went between two
    // refreshes): both are kept until the counters are looked at.
    std::vector<MountEntry> remaining;
    for (const auto &entry : table.entries())
        if (entry.fstype != "overlay")
            remaining.push_back(entry);
    const MountTable after(remaining);
    overlays.reload(after);
    CHECK(overlays.target(kdev(0, 52)) == kdev(8, 1));
    CHECK(overlays.target(kdev(0, 54)) == kdev(7, 3));
    overlays.forget_gone_except({kdev(0, 52)});  // only 0:52 still has counters
    CHECK(overlays.target(kdev(0, 52)) == kdev(8, 1));
    CHECK(overlays.target(kdev(0, 54)) == kdev(0, 54));
    overlays.reload(after);  // another mount change: still kept
    CHECK(overlays.target(kdev(0, 52)) == kdev(8, 1));
    // Its counters go too: forgotten.
    overlays.forget_gone_except({});
    CHECK(overlays.target(kdev(0, 52)) == kdev(0, 52));
    CHECK(overlays.size() == 0);
    // An anonymous number reused by another mount takes its new meaning.
    overlays.reload(table);
    auto reused = remaining;
    reused.push_back(parse_mountinfo("400 22 0:52 / /run/x rw - tmpfs tmpfs rw\n").at(0));
    overlays.reload(MountTable(reused));
    CHECK(overlays.target(kdev(0, 52)) == kdev(0, 52));
    CHECK(overlays.target(kdev(0, 54)) == kdev(7, 3));  // gone, not yet looked at
}

TEST_CASE("an overlay whose upper layer is on another overlay resolves through it", "[mountinfo][overlay]")
{
    const auto entries = parse_mountinfo(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 0:60 / /outer rw - overlay overlay rw,lowerdir=/l,upperdir=/u1,workdir=/w1\n"
        "3 2 0:61 / /outer/inner rw - overlay overlay rw,lowerdir=/l,upperdir=/outer/u2,workdir=/outer/w2\n"
        "4 1 0:62 / /loop-a rw - overlay overlay rw,lowerdir=/l,upperdir=/loop-b/u,workdir=/loop-b/w\n"
        "5 1 0:63 / /loop-b rw - overlay overlay rw,lowerdir=/l,upperdir=/loop-a/u,workdir=/loop-a/w\n");
    REQUIRE(entries.size() == 5);
    OverlayAttribution overlays([](const std::string &path) -> std::optional<uint32_t> {
        if (path == "/u1")
            return kdev(8, 1);
        if (path == "/outer/u2")
            return kdev(0, 60);
        if (path == "/loop-b/u")
            return kdev(0, 63);
        if (path == "/loop-a/u")
            return kdev(0, 62);
        return std::nullopt;
    });
    overlays.reload(MountTable(entries));
    CHECK(overlays.target(kdev(0, 61)) == kdev(8, 1));
    // Two overlays on each other (not a real setup): bounded, no hang.
    const uint32_t looped = overlays.target(kdev(0, 62));
    CHECK((looped == kdev(0, 62) || looped == kdev(0, 63)));
}

TEST_CASE("overlay, images and container-engine mounts are hidden by default", "[mountinfo][overlay]")
{
    const auto table = docker_table();
    std::vector<std::string> hidden;
    for (const auto &entry : table.entries())
        if (hidden_by_default(entry.fstype, entry.mount_point))
            hidden.push_back(entry.mount_point);
    CHECK(hidden == std::vector<std::string> {
                        "/sys",
                        "/dev",
                        "/var/lib/docker/overlay2/0123abcd/merged",
                        "/var/lib/docker/containers/"
                        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff/mounts/shm",
                        "/srv/docker data/overlay2/feed/merged",
                        "/mnt/lower-only",
                        "/mnt/gone-upper",
                        "/snap/core/1",
                    });
    // a container's shm under a data root of any name; not a look-alike
    CHECK(hidden_by_default("tmpfs", "/srv/d/containers/" + std::string(64, 'a') + "/mounts/shm"));
    CHECK_FALSE(hidden_by_default("tmpfs", "/srv/d/containers/" + std::string(64, 'g') + "/mounts/shm"));
    CHECK_FALSE(hidden_by_default("tmpfs", "/mounts/shm"));
    // the data root itself is a disk, and so is a disk of its own below it (volumes, overlay2)
    CHECK_FALSE(hidden_by_default("ext4", "/var/lib/docker"));
    CHECK_FALSE(hidden_by_default("ext4", "/var/lib/docker/volumes"));
    CHECK_FALSE(hidden_by_default("xfs", "/var/lib/docker/overlay2"));
    CHECK_FALSE(hidden_by_default("ext4", "/var/lib/containers/storage/volumes"));
    CHECK(hidden_by_default("tmpfs", "/var/lib/docker/containers/x/secrets"));
    CHECK_FALSE(hidden_by_default("tmpfs", "/run"));
    // the kernel's own trees, as node_exporter's fs-types-exclude has them
    for (const char *fstype : {"proc", "sysfs", "cgroup", "cgroup2", "tracefs", "bpf", "nsfs"})
        CHECK(hidden_by_default(fstype, "/anywhere"));
}
