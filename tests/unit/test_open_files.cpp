// Which file a writer writes (resolve/open_files.h), on this process's own
// /proc/self/fd: no root needed.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "resolve/open_files.h"

using namespace diskwatch;

namespace {

struct TempDir {
    std::string path;
    TempDir()
    {
        char pattern[] = "/tmp/dw-open-files-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~TempDir() { ::rmdir(path.c_str()); }
};

uint32_t kernel_dev_of(const std::string &path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return (::major(st.st_dev) << 20) | ::minor(st.st_dev);
}

}  // namespace

TEST_CASE("a file open for writing is found with its path, one only read is not", "[open_files]")
{
    TempDir dir;
    const std::string written = dir.path + "/written.log", read_only = dir.path + "/config";
    int w = ::open(written.c_str(), O_WRONLY | O_CREAT, 0644);
    int r0 = ::open(read_only.c_str(), O_WRONLY | O_CREAT, 0644);
    ::close(r0);
    int r = ::open(read_only.c_str(), O_RDONLY);
    REQUIRE(w >= 0);
    REQUIRE(r >= 0);
    REQUIRE(::write(w, "abc", 3) == 3);
    auto files = files_written_by(::getpid(), kernel_dev_of(dir.path), {}, 8);
    ::close(w);
    ::close(r);
    ::unlink(written.c_str());
    ::unlink(read_only.c_str());
    // Files the test runner itself holds open for writing may be listed too.
    const WrittenFile *found = nullptr;
    for (const auto &file : files) {
        CHECK(file.path != read_only);
        if (file.path == written)
            found = &file;
    }
    REQUIRE(found);
    CHECK_FALSE(found->deleted);
    CHECK(found->size_bytes == 3);
}

TEST_CASE("a deleted file that is still open is marked deleted, its path without the suffix", "[open_files]")
{
    TempDir dir;
    const std::string path = dir.path + "/rotated.log";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    ::unlink(path.c_str());
    REQUIRE(::write(fd, "grow", 4) == 4);
    auto files = files_written_by(::getpid(), kernel_dev_of(dir.path), {st.st_ino}, 8);
    ::close(fd);
    // The inode the kernel named comes first (others the test runner holds
    // open for writing on this filesystem may follow).
    REQUIRE(files.size() >= 1);
    CHECK(files[0].path == path);
    CHECK(files[0].deleted);
    CHECK(files[0].ino == st.st_ino);
}

TEST_CASE("inodes written but no longer open keep their number, first, the list is capped", "[open_files]")
{
    TempDir dir;
    auto files = files_written_by(::getpid(), kernel_dev_of(dir.path), {424242, 434343}, 1);
    REQUIRE(files.size() == 1);
    CHECK(files[0].path.empty());
    CHECK(files[0].ino == 424242);
    CHECK(files_written_by(999999999, kernel_dev_of(dir.path), {7}, 4).at(0).ino == 7);  // no such process
}
