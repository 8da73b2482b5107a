#include <catch2/catch.hpp>

#include "aggregate/process_directory.h"

using namespace diskwatch;

namespace {

ProcessEvent event(ProcessEvent::Kind kind, uint32_t tgid, const std::string &comm)
{
    ProcessEvent e;
    e.kind = kind;
    e.tgid = tgid;
    e.comm = comm;
    e.uid = 1000;
    return e;
}

}  // namespace

TEST_CASE("a live process is looked up once and remembered", "[processes]")
{
    int reads = 0;
    ProcessDirectory directory([&](uint32_t tgid) -> std::optional<ProcessIdentity> {
        ++reads;
        if (tgid == 7)
            return ProcessIdentity{"suricata", "/usr/bin/suricata", 0};
        return std::nullopt;
    });
    REQUIRE(directory.lookup(7));
    CHECK(directory.lookup(7)->identity.comm == "suricata");
    CHECK(reads == 1);
    CHECK(directory.lookup(8) == nullptr);
}

TEST_CASE("a process that exited before it was looked up keeps the name from its exit record", "[processes]")
{
    ProcessDirectory directory([](uint32_t) { return std::nullopt; });
    directory.on_event(event(ProcessEvent::Kind::exit, 42, "dd"));
    const ProcessRecord *record = directory.lookup(42);
    REQUIRE(record);
    CHECK(record->identity.comm == "dd");
    CHECK(record->identity.uid == 1000);
    CHECK(record->exited);
    CHECK(directory.take_exits() == std::unordered_set<uint32_t>{42});
    CHECK(directory.take_exits().empty());
}

TEST_CASE("exec and rename records update a known process's name", "[processes]")
{
    ProcessDirectory directory([](uint32_t) { return ProcessIdentity{"bash", "/bin/bash", 0}; });
    REQUIRE(directory.lookup(5));
    directory.on_event(event(ProcessEvent::Kind::exec, 5, "logrotate"));
    CHECK(directory.lookup(5)->identity.comm == "logrotate");
    directory.on_event(event(ProcessEvent::Kind::rename, 5, "worker-1"));
    CHECK(directory.lookup(5)->identity.comm == "worker-1");
}

TEST_CASE("exited processes beyond the retention bound are forgotten oldest first", "[processes]")
{
    ProcessDirectory directory([](uint32_t) { return std::nullopt; }, 2);
    for (uint32_t tgid = 1; tgid <= 4; ++tgid)
        directory.on_event(event(ProcessEvent::Kind::exit, tgid, "p" + std::to_string(tgid)));
    directory.prune();
    CHECK(directory.size() == 2);
    CHECK(directory.lookup(1) == nullptr);
    CHECK(directory.lookup(4) != nullptr);
}

TEST_CASE("a recycled pid is never named after the process that had it before", "[processes][security]")
{
    // pid 9 was "cc1plus" and exited; now a running "dw-soak" has pid 9.
    std::optional<ProcessIdentity> now_running = ProcessIdentity{"dw-soak", "/opt/dw-soak", 0};
    ProcessDirectory directory([&](uint32_t) { return now_running; });
    directory.on_event(event(ProcessEvent::Kind::exit, 9, "cc1plus"));
    REQUIRE(directory.lookup(9));
    CHECK(directory.lookup(9)->identity.comm == "cc1plus");  // the counters' owner may be the old one
    const ProcessRecord *record = directory.lookup_running(9);
    REQUIRE(record);
    CHECK(record->identity.comm == "dw-soak");
    CHECK_FALSE(record->exited);
    // A running process is read once, then remembered.
    now_running = ProcessIdentity{"other", "", 0};
    CHECK(directory.lookup_running(9)->identity.comm == "dw-soak");
    // Gone already (its exit record lost): the last thing known is kept.
    ProcessDirectory gone([](uint32_t) { return std::optional<ProcessIdentity>(); });
    gone.on_event(event(ProcessEvent::Kind::exit, 4, "old"));
    REQUIRE(gone.lookup_running(4));
    CHECK(gone.lookup_running(4)->identity.comm == "old");
}

TEST_CASE("a pid's start time is the one read when it was first seen: exec and rename keep it, a new process on the pid has its own",
          "[processes][security]")
{
    // What /proc says about pid 9 now (docs/security.md row 19a).
    std::optional<ProcessIdentity> now_there = ProcessIdentity{"dw-writer", "/opt/dw-writer", 0, 100.25};
    ProcessDirectory directory([&](uint32_t) { return now_there; });
    REQUIRE(directory.lookup_running(9));
    CHECK(directory.lookup_running(9)->identity.start_boot_s == 100.25);
    // The writer exits, its exit record is lost, and a process of the same
    // name takes the pid: the directory keeps what it saw, so the enforcer can
    // tell the two apart when it opens a pidfd on the pid.
    now_there = ProcessIdentity{"dw-writer", "/opt/dw-writer", 0, 180.5};
    CHECK(directory.lookup_running(9)->identity.start_boot_s == 100.25);
    // exec and rename change the program and the name, not the process.
    directory.on_event(event(ProcessEvent::Kind::exec, 9, "sh"));
    directory.on_event(event(ProcessEvent::Kind::rename, 9, "worker"));
    CHECK(directory.lookup(9)->identity.comm == "worker");
    CHECK(directory.lookup(9)->identity.start_boot_s == 100.25);
    // Its exit seen, a running process on the pid is read afresh, with its own start.
    directory.on_event(event(ProcessEvent::Kind::exit, 9, "worker"));
    CHECK(directory.lookup(9)->identity.start_boot_s == 100.25);
    CHECK(directory.lookup_running(9)->identity.start_boot_s == 180.5);
}
