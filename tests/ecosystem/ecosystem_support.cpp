#include "ecosystem/ecosystem_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/spawn.h"
#include "support/stale_fixtures.h"

extern char **environ;

namespace diskwatch::test {

// "dw-sock-" -> /tmp/dw-sock-<owner tag>-XXXXXX, swept if the binary is killed.
TempDir::TempDir(const std::string &prefix)
    : path_(make_owned_temp_dir(prefix.back() == '-' ? prefix.substr(0, prefix.size() - 1) : prefix))
{
}

TempDir::~TempDir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

int free_udp_port()
{
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length) != 0)
        throw std::runtime_error("cannot find a free UDP port");
    ::close(fd);
    return ntohs(address.sin_port);
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const std::string &path, const std::string &text)
{
    std::ofstream out(path);
    out << text;
    if (!out)
        throw std::runtime_error("cannot write " + path);
}

int run_with_stdin(const std::vector<std::string> &argv, const std::string &input, std::string *output,
                   std::chrono::milliseconds timeout)
{
    TempDir dir("dw-stdin-");
    const std::string input_file = dir.file("stdin");
    const std::string output_file = dir.file("output");
    write_file(input_file, input);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, input_file.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char *> args;
    for (const auto &arg : argv)
        args.push_back(const_cast<char *>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (output)
        *output = read_file(output_file);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

std::string find_tool(const std::string &name)
{
    for (const char *dir : {"/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/"}) {
        std::string path = std::string(dir) + name;
        if (::access(path.c_str(), X_OK) == 0)
            return path;
    }
    return "";
}

std::string build_deb(const TempDir &dir)
{
    const std::string cpack = find_tool("cpack");
    if (cpack.empty())
        FAIL("cpack is not installed (Debian package cmake; scripts/install-deps.sh)");
    std::string output;
    const int status = run({cpack, "-G", "DEB", "--config", DW_BUILD_DIR "/CPackConfig.cmake", "-B", dir.path()},
                           &output, std::chrono::seconds(600));
    INFO(output);
    REQUIRE(status == 0);
    for (const auto &entry : std::filesystem::directory_iterator(dir.path()))
        if (entry.path().extension() == ".deb")
            return entry.path().string();
    FAIL("cpack made no .deb in " + dir.path());
    return {};
}

bool root_tests_can_run()
{
    if (::geteuid() == 0)
        return true;
    const char *ci = std::getenv("CI");
    if (ci && std::string(ci) == "true")
        FAIL("this test needs root (CI=true: not skipped)");
    WARN("skipped: needs root");
    return false;
}

}  // namespace diskwatch::test
