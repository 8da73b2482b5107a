// Rule evaluation on synthetic refreshes: sustained rates, written-within,
// growth share, selectors, cgroup scope, and one event per state change.
#include <catch2/catch.hpp>

#include "rules/rule_engine.h"

using namespace diskwatch;

namespace {

constexpr double kMiB = 1048576.0;

ReportRow row(uint32_t pid, const std::string &comm, double bytes, double interval_s, uint64_t cgroup_id = 10,
              const std::string &mount = "/data")
{
    ReportRow r;
    r.pid = pid;
    r.comm = comm;
    r.exe = "/usr/bin/" + comm;
    r.start_boot_s = 1000.0 + pid;  // as if each pid's process started at 1000 + pid s after boot
    r.cgroup_id = cgroup_id;
    r.cgroup = "/test/" + std::to_string(cgroup_id);
    r.mount = mount;
    r.dev = "7:0";
    r.write_bytes = static_cast<uint64_t>(bytes);
    r.write_bps = bytes / interval_s;
    r.growth_bytes = r.write_bytes;  // an appender: its files grow by what it writes
    r.growth_bps = r.write_bps;
    return r;
}

PolicyRule rate_rule(double bps, double for_s, RuleScope scope = RuleScope::process)
{
    PolicyRule rule;
    rule.name = "fast";
    rule.scope = scope;
    rule.when.any = {{Condition::Kind::write_rate, bps, for_s}};
    return rule;
}

}  // namespace

TEST_CASE("volume_exceeds is the volume within the window, whatever its shape", "[rules]")
{
    std::deque<std::pair<double, double>> steady;
    for (int i = 0; i <= 8; ++i)
        steady.emplace_back(i * 0.25, i * 0.25 * 100);  // 100 B/s for 2 s
    double measured = 0;
    // "More than R x D": exactly the budget does not hold.
    CHECK_FALSE(volume_exceeds(steady, 100, 2.0, 2.0, &measured));
    CHECK(measured == Approx(100));
    CHECK(volume_exceeds(steady, 99, 2.0, 2.0));
    // A window longer than the history counts what the history has.
    CHECK(volume_exceeds(steady, 60, 3.0, 2.0, &measured));
    CHECK(measured == Approx(200.0 / 3));
    CHECK_FALSE(volume_exceeds(steady, 67, 3.0, 2.0));
    // A burst then silence: the volume is what counts (the per-slice "held"
    // of 0.1 let this through).
    std::deque<std::pair<double, double>> burst = {{0, 0}, {0.25, 400}, {2.0, 400}};
    CHECK(volume_exceeds(burst, 199, 2.0, 2.0, &measured));
    CHECK(measured == Approx(200));
    CHECK_FALSE(volume_exceeds(burst, 200, 2.0, 2.0));
    // The burst slides out of the window: at 2.25 s the window [0.25, 2.25] holds none of it.
    burst.emplace_back(2.25, 400);
    CHECK_FALSE(volume_exceeds(burst, 1, 2.0, 2.25, &measured));
    CHECK(measured == Approx(0));
    // for: 0 -> the last interval alone.
    CHECK_FALSE(volume_exceeds(burst, 0, 0, 2.25));
    std::deque<std::pair<double, double>> last = {{0, 0}, {0.25, 400}};
    CHECK(volume_exceeds(last, 1599, 0, 0.25, &measured));
    CHECK(measured == Approx(1600));
    CHECK_FALSE(volume_exceeds(last, 1600, 0, 0.25));
}

TEST_CASE("bursts with pauses longer than a slice are held by their volume", "[rules]")
{
    // 20 MiB/s for 2 s (a 40 MiB budget) against a writer of 40 MiB at once,
    // then a pause of ~1 s: about 32 MiB/s on average (issue 14's first escape).
    RuleEngine engine({rate_rule(20 * kMiB, 2.0)});
    engine.evaluate(0, {}, {});
    double started_at = -1;
    for (int i = 1; i <= 24 && started_at < 0; ++i) {
        const double t = i * 0.25;
        // A 40 MiB burst in the interval ending at 0.25, 1.5, 2.75, ... (every 1.25 s).
        const bool burst = (i - 1) % 5 == 0;
        auto findings = engine.evaluate(t, burst ? std::vector<ReportRow>{row(42, "eve", 40 * kMiB, 0.25)}
                                                 : std::vector<ReportRow>{},
                                        {});
        if (!findings.empty()) {
            REQUIRE(findings.size() == 1);
            CHECK(findings[0].change == Finding::Change::started);
            CHECK(findings[0].measures.condition == "write_rate");
            started_at = t;
        }
    }
    // The second burst takes the window over 40 MiB in the interval it lands in.
    CHECK(started_at == Approx(1.5));
}

TEST_CASE("a steady writer at 0.9 R, or bursts of 0.95 R x D per window, never holds", "[rules]")
{
    RuleEngine engine({rate_rule(10 * kMiB, 2.0)});
    engine.evaluate(0, {}, {});
    for (int i = 1; i <= 400; ++i) {
        const double t = i * 0.25;
        std::vector<ReportRow> rows = {row(7, "steady", 0.9 * 10 * kMiB * 0.25, 0.25)};
        // 0.95 x 20 MiB in one interval every 2 s: never more than that within any 2 s.
        if (i % 9 == 0)
            rows.push_back(row(8, "bursty", 0.95 * 20 * kMiB, 0.25));
        CHECK(engine.evaluate(t, rows, {}).empty());
    }
}

TEST_CASE("a writer above write_rate for `for` starts the rule once, then ends once", "[rules]")
{
    RuleEngine engine({rate_rule(10 * kMiB, 1.0)});
    std::vector<Finding> all;
    double t = 0;
    engine.evaluate(t, {}, {});
    // 20 MiB/s for 2 s in 0.25 s refreshes: the 10 MiB budget of the 1 s
    // window is crossed in the third refresh (15 MiB within [-0.25, 0.75]).
    for (int i = 0; i < 8; ++i) {
        t += 0.25;
        auto findings = engine.evaluate(t, {row(42, "flood", 5 * kMiB, 0.25)}, {});
        if (t < 0.75)
            CHECK(findings.empty());
        if (t == 0.75)
            CHECK(findings.size() == 1);
        all.insert(all.end(), findings.begin(), findings.end());
    }
    REQUIRE(all.size() == 1);
    CHECK(all[0].change == Finding::Change::started);
    CHECK(all[0].subject.pid == 42);
    CHECK(all[0].subject.comm == "flood");
    // Who it is, for the enforcer: the start time read when its pid was first seen.
    CHECK(all[0].subject.start_boot_s == 1042.0);
    CHECK(all[0].subject.key() == "process:42");
    CHECK(all[0].measures.condition == "write_rate");
    // The window's volume over its length: 15 MiB within the last second.
    CHECK(all[0].measures.write_bps == Approx(15 * kMiB).epsilon(0.01));
    CHECK(engine.holds(0, "process:42"));
    // It stops: ended once, after a quiet spell of max(for, 1s).
    all.clear();
    for (int i = 0; i < 12; ++i) {
        t += 0.25;
        auto findings = engine.evaluate(t, {}, {});
        all.insert(all.end(), findings.begin(), findings.end());
    }
    REQUIRE(all.size() == 1);
    CHECK(all[0].change == Finding::Change::ended);
    CHECK_FALSE(engine.holds(0, "process:42"));
}

TEST_CASE("a slower writer never matches", "[rules]")
{
    RuleEngine engine({rate_rule(10 * kMiB, 1.0)});
    double t = 0;
    engine.evaluate(t, {}, {});
    for (int i = 0; i < 20; ++i) {
        t += 0.25;
        CHECK(engine.evaluate(t, {row(7, "steady", 2 * kMiB, 0.25)}, {}).empty());
    }
}

TEST_CASE("selectors: all given must match, globs", "[rules]")
{
    PolicyRule rule = rate_rule(1, 0);
    rule.match.comm = {"suri*"};
    rule.match.mount = {"/var/log"};
    CHECK(RuleEngine::row_matches(rule, row(1, "suricata", 10, 1, 10, "/var/log")));
    CHECK_FALSE(RuleEngine::row_matches(rule, row(1, "suricata", 10, 1, 10, "/data")));
    CHECK_FALSE(RuleEngine::row_matches(rule, row(1, "nginx", 10, 1, 10, "/var/log")));
    rule.match.uid = {1000};
    CHECK_FALSE(RuleEngine::row_matches(rule, row(1, "suricata", 10, 1, 10, "/var/log")));
}

TEST_CASE("cgroup scope sums short-lived processes of one cgroup", "[rules]")
{
    RuleEngine engine({rate_rule(10 * kMiB, 1.0, RuleScope::cgroup)});
    std::vector<Finding> all;
    double t = 0;
    engine.evaluate(t, {}, {});
    // Each refresh, two new processes write 2 MiB each and exit: 16 MiB/s for the cgroup,
    // 8 MiB/s for none of them.
    uint32_t pid = 100;
    for (int i = 0; i < 8; ++i) {
        t += 0.25;
        auto a = row(pid++, "job", 2 * kMiB, 0.25, 77);
        auto b = row(pid++, "job", 2 * kMiB, 0.25, 77);
        a.exited = b.exited = true;
        auto findings = engine.evaluate(t, {a, b}, {});
        all.insert(all.end(), findings.begin(), findings.end());
    }
    REQUIRE(all.size() == 1);
    CHECK(all[0].subject.scope == RuleScope::cgroup);
    CHECK(all[0].subject.cgroup_id == 77);
    CHECK(all[0].subject.cgroup == "/test/77");
    CHECK(all[0].subject.key() == "cgroup:77");
    // Held when the window's volume first exceeded 10 MiB: 12 MiB within [-0.25, 0.75].
    CHECK(all[0].measures.write_bps == Approx(12 * kMiB).epsilon(0.01));
}

TEST_CASE("written within a window", "[rules]")
{
    PolicyRule rule;
    rule.name = "volume";
    rule.when.any = {{Condition::Kind::written, 10 * kMiB, 5}};
    RuleEngine engine({rule});
    double t = 0;
    engine.evaluate(t, {}, {});
    std::vector<Finding> all;
    for (int i = 0; i < 10; ++i) {
        t += 0.5;
        auto findings = engine.evaluate(t, {row(5, "batch", 1.5 * kMiB, 0.5)}, {});
        all.insert(all.end(), findings.begin(), findings.end());
    }
    REQUIRE(all.size() == 1);
    CHECK(all[0].measures.condition == "written");
    CHECK(all[0].measures.written_bytes >= static_cast<uint64_t>(10 * kMiB));
}

TEST_CASE("growth share and eta_full come from the mount's net growth", "[rules]")
{
    PolicyRule rule;
    rule.name = "filler";
    rule.when.any = {{Condition::Kind::eta_full, 60, 0}};
    RuleEngine engine({rule});
    MountState mount{"/data", static_cast<uint64_t>(100 * kMiB), 4 * kMiB, 4 * kMiB, 42.5, 25.0};
    double t = 0;
    engine.evaluate(t, {}, {mount});
    t += 1;
    // It wrote 3 of the mount's 4 MiB/s: 3 MiB/s of growth, full in 33 s.
    auto findings = engine.evaluate(t, {row(9, "filler", 3 * kMiB, 1), row(10, "other", 1 * kMiB, 1)}, {mount});
    REQUIRE(findings.size() == 1);
    CHECK(findings[0].subject.pid == 9);
    CHECK(findings[0].measures.condition == "eta_full");
    REQUIRE(findings[0].measures.eta_full_s);
    CHECK(*findings[0].measures.eta_full_s == Approx(100.0 / 3).epsilon(0.01));
    CHECK(findings[0].subject.mount == "/data");
    CHECK(findings[0].subject.mount_used_pct == Approx(42.5));
    CHECK(findings[0].subject.mount_eta_full_s == Approx(25.0));
}

TEST_CASE("a window is never longer than for: a burst just before it is not interpolated in", "[rules]")
{
    // 7.6 MiB at once every 2.1 s (never more than 0.95 x 4 MiB/s x 2 s within
    // any 2 s), seen by evaluations every 0.25 s: the interval that straddles a
    // window's start holds the previous burst, and spreading it evenly over
    // that interval used to charge part of it to the window.
    RuleEngine engine({rate_rule(4 * kMiB, 2.0)});
    engine.evaluate(0, {}, {});
    double next_burst = 0.1;
    for (int i = 1; i <= 400; ++i) {
        const double t = i * 0.25;
        std::vector<ReportRow> rows;
        if (next_burst <= t) {
            rows.push_back(row(8, "bursty", 7.6 * kMiB, 0.25));
            next_burst += 2.1;
        }
        CHECK(engine.evaluate(t, rows, {}).empty());
    }
}

TEST_CASE("growth_rate: a steady appender is never charged more than its own files grew", "[rules]")
{
    PolicyRule rule;
    rule.name = "grows";
    rule.when.any = {{Condition::Kind::growth_rate, 8 * kMiB, 2.0}};
    RuleEngine engine({rule});
    MountState mount;
    mount.mount = "/data";
    mount.available_bytes = 1ull << 40;
    mount.used_pct = 10;
    engine.evaluate(0, {}, {mount});
    for (int i = 1; i <= 40; ++i) {
        const double t = i * 0.25;
        // The mount's net growth (an average over seconds) still carries
        // another writer's earlier burst: 40 MiB/s, while this one alone
        // appends 1 MiB per interval (4 MiB/s) now.
        mount.write_bps = 4 * kMiB;
        mount.fill_bps = 40 * kMiB;
        CHECK(engine.evaluate(t, {row(5, "steady", 1 * kMiB, 0.25)}, {mount}).empty());
    }
    REQUIRE(engine.measures(0, "process:5"));
    CHECK(engine.measures(0, "process:5")->growth_bps == Approx(4 * kMiB).epsilon(0.01));
}

TEST_CASE("all: a rate and the mount's fill must hold together, and any: one of them is enough", "[rules]")
{
    PolicyRule rule;
    rule.name = "full-and-fast";
    rule.when.all = {{Condition::Kind::write_rate, 20 * kMiB, 1.0}, {Condition::Kind::mount_usage, 90, 0}};
    RuleEngine engine({rule});
    MountState mount;
    mount.mount = "/data";
    mount.available_bytes = static_cast<uint64_t>(1024 * kMiB);
    mount.used_pct = 50;
    engine.evaluate(0, {}, {mount});
    // 40 MiB/s on a half-empty mount: the rate alone is not enough.
    double t = 0;
    for (int i = 0; i < 12; ++i) {
        t += 0.25;
        CHECK(engine.evaluate(t, {row(42, "eve", 10 * kMiB, 0.25)}, {mount}).empty());
    }
    // The mount passes 90%: both hold.
    mount.used_pct = 91;
    t += 0.25;
    auto findings = engine.evaluate(t, {row(42, "eve", 10 * kMiB, 0.25)}, {mount});
    REQUIRE(findings.size() == 1);
    CHECK(findings[0].change == Finding::Change::started);
    CHECK(findings[0].measures.condition == "write_rate");
    CHECK(findings[0].measures.write_bps == Approx(40 * kMiB));
    // A full mount and a writer that slowed down: the rate no longer holds; the
    // rule ends after its quiet spell (max(for, 1 s)).
    bool ended = false;
    for (int i = 0; i < 12 && !ended; ++i) {
        t += 0.25;
        for (const auto &finding : engine.evaluate(t, {row(42, "eve", 1 * kMiB, 0.25)}, {mount}))
            ended = ended || finding.change == Finding::Change::ended;
    }
    CHECK(ended);

    // any + all: all of `all`, and one of `any`.
    PolicyRule mixed;
    mixed.name = "mixed";
    mixed.when.all = {{Condition::Kind::mount_usage, 90, 0}};
    mixed.when.any = {{Condition::Kind::written, 100 * kMiB, 600}, {Condition::Kind::write_rate, 20 * kMiB, 1.0}};
    RuleEngine both({mixed});
    both.evaluate(0, {}, {mount});
    auto first = both.evaluate(0.25, {row(7, "slow", 1 * kMiB, 0.25)}, {mount});
    CHECK(first.empty());  // the mount is full, but neither of `any` holds
    auto second = both.evaluate(0.5, {row(7, "slow", 120 * kMiB, 0.25)}, {mount});
    REQUIRE(second.size() == 1);
    CHECK(second[0].measures.condition == "written");  // the first of `any` that held

    // No condition at all never holds (the parser refuses such a rule).
    PolicyRule empty;
    empty.name = "empty";
    RuleEngine none({empty});
    none.evaluate(0, {}, {mount});
    CHECK(none.evaluate(0.25, {row(7, "w", 100 * kMiB, 0.25)}, {mount}).empty());
}
