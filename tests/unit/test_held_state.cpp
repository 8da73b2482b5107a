// state.json (userspace/actions/held_state.h): what an agent holds stopped,
// frozen or limited, for its guard and for a restarted agent.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "actions/held_state.h"

using namespace diskwatch;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path = fs::temp_directory_path() / ("dw-held-" + std::to_string(::getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("the held state round-trips exactly, hostile cgroup bytes included", "[agent][state]")
{
    TempDir dir;
    HeldState state;
    state.agent_pid = 4242;
    state.stopped.push_back({123, 456.78, "dw-\xff\x01name"});
    state.frozen.push_back("/sys/fs/cgroup/a b\n\xfe\"c");
    state.io_max.push_back({"/sys/fs/cgroup/x", "7:3"});
    std::string error;
    REQUIRE(save_held_state(dir.path, state, &error));
    auto loaded = load_held_state(dir.path, &error);
    INFO(error);
    REQUIRE(loaded);
    CHECK(loaded->agent_pid == 4242);
    REQUIRE(loaded->stopped.size() == 1);
    CHECK(loaded->stopped[0].pid == 123);
    CHECK(loaded->stopped[0].start_boot_s == Approx(456.78));
    REQUIRE(loaded->frozen.size() == 1);
    CHECK(loaded->frozen[0] == state.frozen[0]);
    REQUIRE(loaded->io_max.size() == 1);
    CHECK(loaded->io_max[0].cgroup_dir == "/sys/fs/cgroup/x");
    CHECK(loaded->io_max[0].dev == "7:3");
}

TEST_CASE("a missing, garbage or odd state file is an error or nothing, never a throw", "[agent][state]")
{
    TempDir dir;
    std::string error;
    CHECK_FALSE(load_held_state(dir.path, &error));
    CHECK(error.empty());  // no file: nothing held
    for (const std::string &text : {std::string("{not json"), std::string("[1,2]"), std::string("\x00\xff", 2),
                                    std::string(R"({"agent_pid":"x","stopped":[1,{"pid":"y"}],"frozen":{},"io_max":[{"path_hex":"zz"}]})")}) {
        std::ofstream(dir.path + "/state.json", std::ios::trunc) << text;
        error.clear();
        std::optional<HeldState> loaded;
        REQUIRE_NOTHROW(loaded = load_held_state(dir.path, &error));
        if (loaded) {
            CHECK(loaded->frozen.empty());
            CHECK(loaded->io_max.empty());
        } else {
            CHECK_FALSE(error.empty());
        }
        // Releasing from such a state lets go of nothing and throws nothing.
        CHECK(release_held(loaded, dir.path, "").empty());
    }
}
