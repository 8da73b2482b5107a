// protect.exe by identity (docs/policy.md, "Who can claim a protection";
// actions/protected_exes.h): the file a process runs, by device and inode,
// against the files the protected paths name on the host, now or earlier.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "actions/protected_exes.h"

using namespace diskwatch;
namespace fs = std::filesystem;

namespace {

// A scratch directory, removed however the test ends.
struct TempDir {
    std::string path;
    TempDir()
    {
        std::string pattern = (fs::temp_directory_path() / "dw-unit-exes-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir()
    {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

// A copy of sleep(1) at `path`, run: reaped (SIGKILL) however the test ends.
struct Sleeper {
    pid_t pid;
    explicit Sleeper(const std::string &path) : pid(::fork())
    {
        if (pid == 0) {
            char *const argv[] = {const_cast<char *>("sleep"), const_cast<char *>("60"), nullptr};
            ::execv(path.c_str(), argv);
            _exit(127);
        }
        REQUIRE(pid > 0);
        // Until the exec is done, /proc/PID/exe is the test binary.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        std::error_code error;
        while (fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", error) != fs::path(path) &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ~Sleeper()
    {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
};

std::string sleep_binary()
{
    for (const char *candidate : {"/usr/bin/sleep", "/bin/sleep"})
        if (::access(candidate, X_OK) == 0)
            return candidate;
    FAIL("no sleep binary");
    return "";
}

// An in-place upgrade, as a package manager does it: a new file renamed over the old.
void replace_in_place(const std::string &path)
{
    const std::string fresh = path + ".new";
    fs::copy_file(sleep_binary(), fresh, fs::copy_options::overwrite_existing);
    fs::permissions(fresh, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    REQUIRE(::rename(fresh.c_str(), path.c_str()) == 0);
}

ProtectedExes::Options own_host()
{
    ProtectedExes::Options options;
    options.host_pid = ::getpid();  // /proc/1/root needs root; our own root is the host's here
    return options;
}

}  // namespace

TEST_CASE("protect.exe decides by the file a process runs, not by the path it shows", "[actions][protection]")
{
    std::map<FileIdentity, ProtectedFile> files;
    files[{10, 100, 1}] = {"/usr/sbin/postgres", "/usr/sbin/postgres", 0, true, nullptr};
    // replaced while the agent ran
    files[{10, 99, 1}] = {"/usr/sbin/postgres", "/usr/sbin/postgres", 0, false, nullptr};

    ExeFacts exe;
    exe.identity = {10, 100, 1};
    exe.path = "/usr/sbin/postgres";
    exe.mode = S_IFREG | 0755;
    exe.host_user_namespace = true;
    CHECK(exe_protection_reason(exe, files) ==
          "exe /usr/sbin/postgres is protect.exe /usr/sbin/postgres (the host's file: device 0:10, inode 100)");

    SECTION("the file the path named before an upgrade stays protected, wherever the process is")
    {
        exe.identity = {10, 99, 1};
        exe.path = "/usr/sbin/postgres (deleted)";
        exe.host_user_namespace = false;
        const auto reason = exe_protection_reason(exe, files);
        REQUIRE(reason);
        CHECK(reason->find("earlier version of /usr/sbin/postgres") != std::string::npos);
        // Its inode number given to a user's new file (the old one gone): another birth time.
        exe.identity = {10, 99, 2};
        exe.path = "/tmp/mine";
        exe.owner_uid = 1000;
        CHECK_FALSE(exe_protection_reason(exe, files));
    }
    SECTION("the protected path showing another file (a tmpfs mounted over it in a user's namespace) is not protected")
    {
        exe.identity = {42, 7, 1};
        exe.owner_uid = 65534;
        exe.host_user_namespace = false;
        CHECK_FALSE(exe_protection_reason(exe, files));
        exe.host_user_namespace = true;  // a path is never enough, even in the host's namespace
        CHECK_FALSE(exe_protection_reason(exe, files));
    }
    SECTION("a deleted file the agent never saw: protected only as root could have left it")
    {
        exe.identity = {10, 55, 1};
        exe.path = "/usr/sbin/postgres (deleted)";
        const auto reason = exe_protection_reason(exe, files);
        REQUIRE(reason);
        CHECK(reason->find("replaced before the agent saw it") != std::string::npos);

        ExeFacts other = exe;
        other.host_user_namespace = false;  // a user namespace: its mounts are the user's to make
        CHECK_FALSE(exe_protection_reason(other, files));
        other = exe;
        other.identity.dev = 11;  // another filesystem (a tmpfs)
        CHECK_FALSE(exe_protection_reason(other, files));
        other = exe;
        other.owner_uid = 1000;  // a file its user made
        CHECK_FALSE(exe_protection_reason(other, files));
        other = exe;
        other.mode = S_IFREG | 0777;  // anyone could have written it
        CHECK_FALSE(exe_protection_reason(other, files));
        other = exe;
        other.path = "/usr/sbin/postgresql (deleted)";
        CHECK_FALSE(exe_protection_reason(other, files));
        other = exe;
        other.path = "/usr/sbin/postgres";  // not deleted: another file at the path
        CHECK_FALSE(exe_protection_reason(other, files));
    }
}

TEST_CASE("protect.exe globs name the host's files, one path component per star, (?i) caseless",
          "[actions][protection]")
{
    TempDir dir;
    fs::create_directories(dir.path + "/sbin/deeper");
    for (const char *name : {"sbin/Postgres", "sbin/postgres-16", "sbin/deeper/postgres", "sbin/.postgres"})
        fs::copy_file(sleep_binary(), dir.path + "/" + name);
    const int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(root >= 0);
    struct CloseRoot {
        int fd;
        ~CloseRoot() { ::close(fd); }
    } close_root {root};
    auto found = expand_host_glob(root, dir.path + "/sbin/postgres*", 100);
    std::sort(found.begin(), found.end());
    CHECK(found == std::vector<std::string> {dir.path + "/sbin/postgres-16"});
    found = expand_host_glob(root, "(?i)" + dir.path + "/sbin/postgres*", 100);
    std::sort(found.begin(), found.end());
    CHECK(found == std::vector<std::string> {dir.path + "/sbin/Postgres", dir.path + "/sbin/postgres-16"});
    found = expand_host_glob(root, dir.path + "/*/postgres", 100);
    CHECK(found.empty());  // no file at <dir>/sbin/postgres: a star stays in its component
    found = expand_host_glob(root, dir.path + "/sbin/*/postgres", 100);
    CHECK(found == std::vector<std::string> {dir.path + "/sbin/deeper/postgres"});
    CHECK(expand_host_glob(root, dir.path + "/sbin/*", 1).size() == 1);  // bounded
    CHECK(expand_host_glob(root, "relative/*", 100).empty());
}

TEST_CASE("a protected executable keeps its protection after an in-place upgrade, a copy elsewhere has none",
          "[actions][protection]")
{
    TempDir dir;
    const std::string protected_path = dir.path + "/postgres";
    const std::string copy_path = dir.path + "/copy/postgres";
    fs::create_directories(dir.path + "/copy");
    fs::copy_file(sleep_binary(), protected_path);
    fs::copy_file(sleep_binary(), copy_path);

    ProtectedExes exes({protected_path}, own_host());
    CHECK(exes.remembered() == 1);
    Sleeper genuine(protected_path);
    Sleeper copy(copy_path);
    const auto reason = exes.reason(genuine.pid);
    REQUIRE(reason);
    CHECK(reason->find("is protect.exe " + protected_path) != std::string::npos);
    CHECK_FALSE(exes.reason(copy.pid));  // the same bytes, another file

    replace_in_place(protected_path);  // the genuine one now runs "<path> (deleted)"
    exes.refresh(0, true);
    CHECK(exes.remembered() == 2);
    const auto after = exes.reason(genuine.pid);
    REQUIRE(after);
    CHECK(after->find("earlier version of " + protected_path) != std::string::npos);
    Sleeper upgraded(protected_path);
    CHECK(exes.reason(upgraded.pid));

    // An agent started after the upgrade never saw the old file: the process
    // is protected as root left it (same filesystem and owner, the host's
    // user namespace), said so.
    ProtectedExes fresh({protected_path}, own_host());
    const auto late = fresh.reason(genuine.pid);
    REQUIRE(late);
    CHECK(late->find("replaced before the agent saw it") != std::string::npos);
    CHECK_FALSE(fresh.reason(copy.pid));

    // A reload that no longer lists the path forgets its files.
    exes.set_patterns({});
    CHECK(exes.remembered() == 0);
    CHECK_FALSE(exes.reason(genuine.pid));
}

TEST_CASE("remembered identities are bounded: the ones replaced longest ago go first", "[actions][protection]")
{
    TempDir dir;
    const std::string path = dir.path + "/tool";
    fs::copy_file(sleep_binary(), path);
    auto options = own_host();
    options.max_remembered = 3;
    ProtectedExes exes({path}, options);
    Sleeper first(path);  // runs the first version
    for (int upgrade = 0; upgrade < 5; ++upgrade) {
        replace_in_place(path);
        exes.refresh(0, true);
        CHECK(exes.remembered() <= 3);
    }
    CHECK(exes.remembered() == 3);
    // The first version was forgotten; the process on it is in our user
    // namespace and the file is ours: protected as left before the agent saw it.
    const auto reason = exes.reason(first.pid);
    REQUIRE(reason);
    INFO(*reason);
    CHECK(reason->find("replaced before the agent saw it") != std::string::npos);
}
