// The bounded walk of explain (resolve/space_walk.h): the largest files and
// subtrees by the space they hold, inodes named, a directory skipped, and
// the limits kept.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "resolve/space_walk.h"

using namespace diskwatch;

namespace {

struct Tree {
    std::string root;
    Tree()
    {
        char pattern[] = "/tmp/dw-walk-XXXXXX";
        REQUIRE(::mkdtemp(pattern));
        root = pattern;
    }
    ~Tree() { std::filesystem::remove_all(root); }
    uint64_t file(const std::string &relative, size_t bytes)
    {
        const std::string path = root + "/" + relative;
        std::filesystem::create_directories(std::filesystem::path(path).parent_path());
        std::ofstream(path) << std::string(bytes, 'x');  // written, so its blocks are allocated
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        return st.st_ino;
    }
};

}  // namespace

TEST_CASE("space walk: the largest files and subtrees, inodes named, a directory skipped", "[space_walk]")
{
    Tree tree;
    tree.file("var/log/app/big.log", 3 << 20);
    tree.file("var/log/app/small.log", 64 << 10);
    const uint64_t lost = tree.file("var/tmp/closed-before-named", 1 << 20);
    tree.file("srv/data/db", 2 << 20);
    tree.file("recorder/fine.00", 4 << 20);  // the recorder's own store: skipped
    const SpaceWalk walk = walk_space(tree.root, 100000, 10, 3, {lost}, tree.root + "/recorder");
    CHECK_FALSE(walk.truncated);
    REQUIRE(walk.files.size() == 3);
    CHECK(walk.files[0].path == tree.root + "/var/log/app/big.log");
    CHECK(walk.files[0].allocated_bytes >= (3u << 20));
    CHECK(walk.files[0].size_bytes == (3u << 20));
    CHECK(walk.files[1].path == tree.root + "/srv/data/db");
    CHECK(walk.files[2].path == tree.root + "/var/tmp/closed-before-named");
    for (const auto &file : walk.files)
        CHECK(file.path.find("/recorder/") == std::string::npos);
    // Subtrees hold their files' bytes: /var (4 MiB+) first.
    REQUIRE_FALSE(walk.directories.empty());
    CHECK(walk.directories[0].path == tree.root + "/var");
    CHECK(walk.directories[0].allocated_bytes >= (4u << 20) + (64u << 10));
    REQUIRE(walk.named.count(lost));
    CHECK(walk.named.at(lost) == tree.root + "/var/tmp/closed-before-named");
}

TEST_CASE("space walk: it stops at its entry limit and says so", "[space_walk]")
{
    Tree tree;
    for (int i = 0; i < 50; ++i)
        tree.file("many/f" + std::to_string(i), 10);
    const SpaceWalk walk = walk_space(tree.root, 20, 10, 5);
    CHECK(walk.truncated);
    CHECK(walk.entries <= 21);
    CHECK(walk_space(tree.root + "/does-not-exist", 100, 1, 5).entries == 0);
}
