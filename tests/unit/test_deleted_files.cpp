// Space held by deleted files still open (resolve/deleted_files.h): on the
// real /proc with this process and a forked child holding one, and on a
// fixture proc tree for what a hostile or racing /proc looks like.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "resolve/deleted_files.h"
#include "resolve/mountinfo.h"

using namespace diskwatch;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        char pattern[] = "/tmp/dw-deleted-files-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

uint32_t kernel_dev_of(const std::filesystem::path &path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return DeviceNumber::from_stat(st.st_dev).to_kernel();
}

// A forked child that keeps `keep` open (and closes `drop`) until told to go.
struct HoldingChild {
    pid_t pid = -1;
    int release = -1;  // write end: closing it lets the child exit
    HoldingChild(int keep, int drop)
    {
        int ready[2], go[2];
        REQUIRE(::pipe(ready) == 0);
        REQUIRE(::pipe(go) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(drop);
            ::close(ready[0]);
            ::close(go[1]);
            ::close(ready[1]);  // tells the parent the fds are as wanted
            char byte;
            while (::read(go[0], &byte, 1) > 0) {
            }
            (void)keep;
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(go[0]);
        char byte;
        while (::read(ready[0], &byte, 1) > 0) {
        }
        ::close(ready[0]);
        release = go[1];
    }
    ~HoldingChild()
    {
        if (release >= 0)
            ::close(release);
        if (pid > 0) {
            int status = 0;
            ::waitpid(pid, &status, 0);
        }
    }
};

}  // namespace

TEST_CASE("a deleted file held by this process and a child is found with its size and both holders",
          "[deleted_files]")
{
    TempDir dir;
    const auto path = dir.path / "held.log";
    const int writer = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    const int reader = ::open(path.c_str(), O_RDONLY);
    REQUIRE(writer >= 0);
    REQUIRE(reader >= 0);
    struct stat before {};
    REQUIRE(::fstat(writer, &before) == 0);
    // A file merely named like a deleted one, not deleted: must not be listed.
    const auto decoy = dir.path / "decoy (deleted)";
    const int decoy_fd = ::open(decoy.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(decoy_fd >= 0);
    REQUIRE(::write(decoy_fd, "x", 1) == 1);

    HoldingChild child(reader, writer);  // the child holds it read-only, we hold it for writing
    ::close(reader);
    REQUIRE(::unlink(path.c_str()) == 0);
    const std::string block(size_t{1} << 20, 'z');
    REQUIRE(::write(writer, block.data(), block.size()) == static_cast<ssize_t>(block.size()));
    REQUIRE(::fsync(writer) == 0);

    const uint32_t dev = kernel_dev_of(dir.path);
    const auto scan = find_deleted_open_files("/proc", [dev](uint32_t file_dev) { return file_dev == dev; });
    ::close(writer);
    ::close(decoy_fd);

    const auto found = std::find_if(scan.files.begin(), scan.files.end(),
                                    [&](const DeletedFile &file) { return file.inode == before.st_ino; });
    REQUIRE(found != scan.files.end());
    CHECK(found->path == path.string());
    CHECK(found->dev == dev);
    CHECK(found->dev_text == DeviceNumber::from_kernel(dev).to_string());
    CHECK(found->size_bytes == block.size());
    CHECK(found->allocated_bytes >= block.size());
    REQUIRE(found->holders.size() == 2);
    const auto &first = found->holders[0], &second = found->holders[1];
    const auto &self = first.pid == ::getpid() ? first : second;
    const auto &other = first.pid == ::getpid() ? second : first;
    CHECK(self.pid == ::getpid());
    CHECK(other.pid == child.pid);
    CHECK(self.writable);
    CHECK_FALSE(other.writable);
    CHECK(self.fds == std::vector<int>{writer});
    CHECK(other.fds == std::vector<int>{reader});
    CHECK_FALSE(self.comm.empty());
    CHECK(std::none_of(scan.files.begin(), scan.files.end(),
                       [](const DeletedFile &file) { return file.path.find("decoy") != std::string::npos; }));
    CHECK(std::is_sorted(scan.files.begin(), scan.files.end(), [](const DeletedFile &a, const DeletedFile &b) {
        return a.allocated_bytes > b.allocated_bytes;
    }));
}

TEST_CASE("a fixture proc tree: hostile comm, vanished processes, junk entries, the fd bound", "[deleted_files]")
{
    TempDir dir;
    // The deleted file is real (held here); the fixture's fd link points at
    // it through this process's own /proc/self/fd.
    const auto path = dir.path / "gone";
    const int held = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(held >= 0);
    REQUIRE(::write(held, "12345", 5) == 5);
    REQUIRE(::unlink(path.c_str()) == 0);
    const auto not_deleted = dir.path / "named (deleted)";
    std::ofstream(not_deleted) << "still linked";

    const auto proc = dir.path / "proc";
    const std::string through_self = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(held);
    std::filesystem::create_directories(proc / "4242/fd");
    std::filesystem::create_directories(proc / "4242/fdinfo");
    std::filesystem::create_symlink(through_self, proc / "4242/fd/7");
    std::filesystem::create_symlink(through_self, proc / "4242/fd/9");
    std::filesystem::create_symlink(not_deleted, proc / "4242/fd/8");
    std::filesystem::create_symlink(through_self, proc / "4242/fd/not-a-number");
    std::ofstream(proc / "4242/comm", std::ios::binary) << std::string("evil\nname\xff\n");
    std::ofstream(proc / "4242/cgroup") << "0::/system.slice/evil.service\n";
    std::ofstream(proc / "4242/fdinfo/9") << "pos:\t0\nflags:\t0100002\nmnt_id:\t1\n";
    // 4243: exited between readdir and opendir (no fd directory); 4244: its fd
    // link dangles (closed mid-scan); "self" and "junk": not pids.
    std::filesystem::create_directories(proc / "4243");
    std::filesystem::create_directories(proc / "4244/fd");
    std::filesystem::create_symlink(dir.path / "closed", proc / "4244/fd/3");
    std::filesystem::create_directories(proc / "junk/fd");
    std::filesystem::create_symlink(through_self, proc / "junk/fd/1");
    std::filesystem::create_symlink("4242", proc / "self");

    const auto scan = find_deleted_open_files(proc.string());
    REQUIRE(scan.files.size() == 1);
    const auto &file = scan.files[0];
    CHECK(file.path == through_self);  // the fixture's link target, not the real name
    CHECK(file.size_bytes == 5);
    REQUIRE(file.holders.size() == 1);
    CHECK(file.holders[0].pid == 4242);
    CHECK(file.holders[0].comm == std::string("evil\nname\xff"));
    CHECK(file.holders[0].cgroup == "/system.slice/evil.service");
    CHECK(file.holders[0].fds == std::vector<int>{7, 9});
    CHECK(file.holders[0].writable);  // fd 9's flags: O_RDWR; fd 7 has no fdinfo
    CHECK_FALSE(scan.truncated);
    CHECK(scan.fds_examined == 4);  // 4242's three numbered fds, 4244's one

    DeletedFilesLimits one;
    one.max_fds = 1;
    const auto bounded = find_deleted_open_files(proc.string(), {}, one);
    CHECK(bounded.truncated);
    CHECK(bounded.fds_examined == 1);
    CHECK_FALSE(bounded.notes.empty());

    const auto filtered = find_deleted_open_files(proc.string(), [](uint32_t) { return false; });
    CHECK(filtered.files.empty());

    const auto missing = find_deleted_open_files((dir.path / "no-proc").string());
    CHECK(missing.files.empty());
    CHECK_FALSE(missing.notes.empty());
    ::close(held);
}
