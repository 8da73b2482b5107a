// The control socket with real peers: root gets answers; a process that
// dropped to `nobody` is stopped by the file mode and, when the mode lets it
// connect, by the SO_PEERCRED check; a configured group lets its members in
// (docs/control.md).
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <cerrno>
#include <cstring>

#include "control/control_client.h"
#include "control/control_server.h"
#include "ecosystem/ecosystem_support.h"

using namespace diskwatch;
using namespace diskwatch::control;
using namespace diskwatch::test;
using namespace std::chrono_literals;

namespace {

constexpr uid_t kNobody = 65534;

enum ChildOutcome {
    kAnswered = 10,          // got an {"ok":true...} line
    kRefusedByPeerCred = 11,  // got {"ok":false,"error":"permission denied..."}
    kConnectEacces = 12,     // connect() failed with EACCES (file mode)
    kOther = 13,
};

// Forks a child that drops to uid/gid nobody (with `extra_group` as its one
// supplementary group, if any) and asks for status. Only async-signal-safe
// calls after fork: the parent has threads.
int ask_as_nobody(const std::string &path, gid_t extra_group = 0)
{
    sockaddr_un address {};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    static const char request[] = "{\"cmd\":\"status\"}\n";
    pid_t pid = ::fork();
    if (pid == 0) {
        gid_t groups[1] = {extra_group};
        if (::setgroups(extra_group ? 1 : 0, groups) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
            ::_exit(kOther);
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0)
            ::_exit(errno == EACCES ? kConnectEacces : kOther);
        // A refused peer may be closed before the request is written: no SIGPIPE.
        if (::send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) < 0) {
            // the refusal line is still there to read
        }
        char buffer[512] = {};
        ssize_t got = ::read(fd, buffer, sizeof(buffer) - 1);
        if (got <= 0)
            ::_exit(kOther);
        if (std::strstr(buffer, "\"ok\":true"))
            ::_exit(kAnswered);
        if (std::strstr(buffer, "\"ok\":false") && std::strstr(buffer, "permission denied: uid 65534"))
            ::_exit(kRefusedByPeerCred);
        ::_exit(kOther);
    }
    REQUIRE(pid > 0);
    int status = 0;
    // The child does at most one connect and one read from a live server.
    for (int waited = 0; ::waitpid(pid, &status, WNOHANG) == 0; ++waited) {
        if (waited > 2000) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            FAIL("the nobody child hung");
        }
        ::usleep(10000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Fixture {
    TempDir dir {"dw-control-"};
    std::atomic<int> status_calls {0};
    std::string released;

    Fixture() { ::chmod(dir.path().c_str(), 0755); }  // let nobody reach the socket file

    std::unique_ptr<ControlServer> start(ControlServerOptions options)
    {
        options.path = dir.file("run/control.sock");
        std::string error;
        auto server = ControlServer::start(options, &error);
        INFO(error);
        REQUIRE(server);
        server->handle("status", [this](const ControlRequest &request) {
            ++status_calls;
            return nlohmann::json {{"policy", "/etc/ebpf-diskwatch/policy.yaml"}, {"peer_uid", request.peer.uid}};
        });
        server->handle("release", [this](const ControlRequest &request) {
            released = request.body.at("target").get<std::string>();
            if (released == "999999")
                throw ControlError("nothing throttled or frozen matches 999999");
            return nlohmann::json {{"released", {released}}};
        });
        server->handle("snapshot", [](const ControlRequest &request) {
            return nlohmann::json {{"by", request.body.value("by", "process")}, {"rows", nlohmann::json::array()}};
        });
        return server;
    }
};

}  // namespace

TEST_CASE("root gets answers to status, release and snapshot", "[control]")
{
    if (!root_tests_can_run())
        return;
    Fixture fixture;
    auto server = fixture.start({});
    struct stat info;
    REQUIRE(::stat(server->path().c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);

    std::string error;
    auto status = send_request(server->path(), status_request(), 10s, &error);
    INFO(error);
    REQUIRE(status);
    CHECK(status->at("ok") == true);
    CHECK(status->at("policy") == "/etc/ebpf-diskwatch/policy.yaml");
    CHECK(status->at("peer_uid") == 0);

    auto released = send_request(server->path(), release_request("4242"), 10s, &error);
    REQUIRE(released);
    CHECK(released->at("ok") == true);
    CHECK(fixture.released == "4242");
    auto not_found = send_request(server->path(), release_request("999999"), 10s, &error);
    REQUIRE(not_found);
    CHECK(not_found->at("ok") == false);
    CHECK_THAT(not_found->at("error").get<std::string>(), Catch::Contains("999999"));

    auto snapshot = send_request(server->path(), snapshot_request("cgroup"), 10s, &error);
    REQUIRE(snapshot);
    CHECK(snapshot->at("by") == "cgroup");

    auto unknown = send_request(server->path(), nlohmann::json {{"cmd", "reboot"}}, 10s, &error);
    REQUIRE(unknown);
    CHECK(unknown->at("ok") == false);
    CHECK(unknown->at("error") == "unknown command 'reboot' (known: release snapshot status)");
    auto bad = send_request(server->path(), nlohmann::json {{"cmd", "release"}}, 10s, &error);
    REQUIRE(bad);
    CHECK_THAT(bad->at("error").get<std::string>(), Catch::Contains("target"));
    CHECK(server->counters().bad_requests == 2);
}

TEST_CASE("several requests on one connection, and malformed lines, are answered in order", "[control]")
{
    if (!root_tests_can_run())
        return;
    Fixture fixture;
    auto server = fixture.start({});
    std::string error;
    UniqueFd fd = connect_unix_stream(server->path(), false, &error);
    REQUIRE(fd);
    const std::string requests = "{\"cmd\":\"status\"}\nnot json\n{\"cmd\":\"snapshot\",\"by\":\"mount\"}\n";
    REQUIRE(::write(fd.get(), requests.data(), requests.size()) == static_cast<ssize_t>(requests.size()));
    std::string text;
    char buffer[4096];
    while (std::count(text.begin(), text.end(), '\n') < 3) {
        ssize_t got = ::read(fd.get(), buffer, sizeof(buffer));
        REQUIRE(got > 0);
        text.append(buffer, static_cast<size_t>(got));
    }
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);
    CHECK(nlohmann::json::parse(line).at("ok") == true);
    std::getline(lines, line);
    CHECK(nlohmann::json::parse(line).at("error") == "malformed JSON request");
    std::getline(lines, line);
    CHECK(nlohmann::json::parse(line).at("by") == "mount");
}

TEST_CASE("a process running as nobody is refused: by the file mode, and by SO_PEERCRED", "[control]")
{
    if (!root_tests_can_run())
        return;
    Fixture fixture;
    {
        // The default: a root-only socket file. nobody cannot even connect.
        auto server = fixture.start({});
        CHECK(ask_as_nobody(server->path()) == kConnectEacces);
        CHECK(server->counters().connections == 0);
    }
    {
        // A file mode opened up by mistake: the peer check still refuses.
        ControlServerOptions options;
        options.socket_mode = 0666;
        auto server = fixture.start(options);
        CHECK(ask_as_nobody(server->path()) == kRefusedByPeerCred);
        CHECK(server->counters().refused == 1);
        CHECK(fixture.status_calls == 0);  // no handler ran for it
        // Root still gets in.
        std::string error;
        auto status = send_request(server->path(), status_request(), 10s, &error);
        REQUIRE(status);
        CHECK(status->at("ok") == true);
    }
}

TEST_CASE("members of the configured group are let in", "[control]")
{
    if (!root_tests_can_run())
        return;
    Fixture fixture;
    const gid_t group = 4242;  // any gid works: membership is by number
    ControlServerOptions options;
    options.allowed_group = group;
    auto server = fixture.start(options);
    struct stat info;
    REQUIRE(::stat(server->path().c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0660);
    CHECK(info.st_gid == group);
    CHECK(ask_as_nobody(server->path(), group) == kAnswered);
    CHECK(ask_as_nobody(server->path()) == kConnectEacces);  // not a member: the file mode stops it
    CHECK(fixture.status_calls == 1);
}

TEST_CASE("the client says what is wrong when no agent runs", "[control]")
{
    TempDir dir("dw-control-");
    std::string error;
    CHECK_FALSE(send_request(dir.file("control.sock"), status_request(), 2s, &error));
    CHECK_THAT(error, Catch::StartsWith("no agent running"));
    CHECK_THAT(error, Catch::Contains(dir.file("control.sock")));
}
