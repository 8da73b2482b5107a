// The kernel side's arithmetic, run in the kernel under BPF_PROG_TEST_RUN
// (tests/bpf/kernel_logic.bpf.c, the same headers the write hooks include):
// the throttle's allowance, the rate alarm's token bucket and the file-growth
// compare-and-swap, at their edges, with the clock passed in. Two threads
// calling at once on two CPUs stand for concurrent writers. Root (loading BPF).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "diskwatch/abi.h"
#include "kernel_logic.skel.h"
#include "support/scratch.h"

using namespace diskwatch::test;

namespace {

// The programs' contexts: the same layout as in kernel_logic.bpf.c.
struct ThrottleCase {
    uint64_t now;
    int64_t bytes;
    int64_t after;
};
static_assert(sizeof(ThrottleCase) == 24);

struct RateCase {
    uint64_t now;
    int64_t bytes;
    uint64_t id;
    uint32_t scope;
    uint32_t pad;
    int64_t tokens;
    uint64_t total_bytes;
    uint64_t last_alarm_ns;
};
static_assert(sizeof(RateCase) == 56);

enum GrowthOp : uint32_t { kWrite, kAppend, kOpen, kSet };
struct GrowthCase {
    uint32_t op;
    uint32_t dev;
    uint64_t ino;
    int64_t size;
    int64_t end;
    int64_t bytes;
    int32_t writers;
    uint32_t pad;
    uint64_t growth;
    uint64_t known;
};
static_assert(sizeof(GrowthCase) == 64);

constexpr uint64_t kSecond = 1'000'000'000;
constexpr int64_t kMiB = 1 << 20;

struct Logic {
    struct Destroy {
        void operator()(kernel_logic_bpf *skel) const { kernel_logic_bpf__destroy(skel); }
    };
    std::unique_ptr<kernel_logic_bpf, Destroy> skel;

    Logic()
    {
        skel.reset(kernel_logic_bpf__open_and_load());
        REQUIRE(skel);
    }

    template <typename Case>
    void run(bpf_program *program, Case &args) const
    {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
        REQUIRE(bpf_prog_test_run_opts(bpf_program__fd(program), &opts) == 0);
        REQUIRE(opts.retval == 0);
    }

    void set_throttle(uint64_t rate_bps, int64_t burst_bytes, int64_t allowance, uint64_t last_ns) const
    {
        dw_throttle throttle {};
        throttle.rate_bps = rate_bps;
        throttle.burst_bytes = burst_bytes;
        throttle.allowance = allowance;
        throttle.last_ns = last_ns;
        const uint32_t zero = 0;
        REQUIRE(bpf_map_update_elem(bpf_map__fd(skel->maps.test_throttle), &zero, &throttle, BPF_ANY) == 0);
    }
    dw_throttle throttle() const
    {
        dw_throttle throttle {};
        const uint32_t zero = 0;
        REQUIRE(bpf_map_lookup_elem(bpf_map__fd(skel->maps.test_throttle), &zero, &throttle) == 0);
        return throttle;
    }
    int64_t charge(int64_t bytes, uint64_t now) const
    {
        ThrottleCase args {now, bytes, 0};
        run(skel->progs.throttle_charge, args);
        return args.after;
    }

    RateCase add(uint64_t id, int64_t bytes, uint64_t now, uint32_t scope = DW_ALARM_SCOPE_PROCESS) const
    {
        RateCase args {};
        args.now = now;
        args.bytes = bytes;
        args.id = id;
        args.scope = scope;
        run(skel->progs.rate_bucket_add, args);
        return args;
    }

    GrowthCase growth(GrowthCase args) const
    {
        args.dev = 8;
        args.ino = args.ino ? args.ino : 42;
        run(skel->progs.file_growth, args);
        return args;
    }
};

}  // namespace

TEST_CASE("the throttle's allowance refills at its rate, banks at most its burst, and owes what overdraws it",
          "[bpf-logic]")
{
    if (!bpf_tests_can_run())
        return;
    Logic logic;
    const uint64_t t0 = 1000 * kSecond;
    logic.set_throttle(4 * kMiB, 2 * kMiB, 0, t0);
    // 64 KiB at once: owed.
    CHECK(logic.charge(64 * 1024, t0) == -64 * 1024);
    // A quarter second later a MiB has come back (rate x time): 1 MiB - 64 KiB - 64 KiB.
    CHECK(logic.charge(64 * 1024, t0 + kSecond / 4) == kMiB - 128 * 1024);
    // An idle minute banks at most burst_bytes: the write finds burst - its bytes.
    CHECK(logic.charge(4096, t0 + 61 * kSecond) == 2 * kMiB - 4096);
    CHECK(logic.throttle().charged_bytes == 64 * 1024 + 64 * 1024 + 4096);
    // A clock reading older than the last refill (another CPU got there first with a later
    // one) refills nothing and never moves last_ns back.
    const uint64_t last = logic.throttle().last_ns;
    CHECK(logic.charge(4096, last - kSecond / 2) == 2 * kMiB - 8192);
    CHECK(logic.throttle().last_ns == last);
    // ... so the next write refills only from the later reading: 1 ms at 4 MiB/s.
    CHECK(logic.charge(0, last + kSecond / 1000) == 2 * kMiB - 8192 + (4 * kMiB) / 1000);
}

TEST_CASE("the throttle's refill never overflows: a 1 TiB/s throttle idle for a day refills 10 s at most, "
          "capped by its burst",
          "[bpf-logic]")
{
    if (!bpf_tests_can_run())
        return;
    Logic logic;
    const uint64_t tib = 1ull << 40;
    // No bank cap in the way: what the refill arithmetic gives for a day of idling.
    logic.set_throttle(tib, INT64_MAX / 2, 0, kSecond);
    const int64_t after = logic.charge(0, kSecond + 86400 * kSecond);
    CHECK(after == static_cast<int64_t>(10 * tib));  // 10 s of refill, not a wrapped product
    CHECK(after > 0);
}

TEST_CASE("two CPUs charging one throttle at once lose no byte and refill no nanosecond twice", "[bpf-logic]")
{
    if (!bpf_tests_can_run())
        return;
    Logic logic;
    const uint64_t t0 = 1000 * kSecond;
    const uint64_t rate = 1 << 30;  // 1 GiB/s: 1 byte per ns
    logic.set_throttle(rate, INT64_MAX / 4, 0, t0);
    constexpr int kCharges = 20000;
    std::atomic<uint64_t> clock {t0};
    std::atomic<bool> failed {false};
    const auto charger = [&] {
        for (int i = 0; i < kCharges; ++i) {
            ThrottleCase args {clock.fetch_add(1000) + 1000, 4096, 0};  // each call 1 us later
            LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
            if (bpf_prog_test_run_opts(bpf_program__fd(logic.skel->progs.throttle_charge), &opts) != 0)
                failed = true;
        }
    };
    std::thread a(charger), b(charger);
    a.join();
    b.join();
    REQUIRE_FALSE(failed);
    const dw_throttle end = logic.throttle();
    CHECK(end.charged_bytes == 2ull * kCharges * 4096);
    // Every microsecond refilled at most once: allowance <= refill of the whole span - charges.
    const int64_t span_refill = static_cast<int64_t>((end.last_ns - t0) / 1000 * rate / 1000000);
    const int64_t charged = 2LL * kCharges * 4096;
    CHECK(end.allowance <= span_refill - charged);
    // ... and a lost claim undercounts by little: at most one call's microsecond each.
    CHECK(end.allowance >= span_refill - charged - static_cast<int64_t>(2 * kCharges) * (rate / 1000000));
}

TEST_CASE("the rate alarm's bucket: full at first, refilled at the threshold, alarms once per repeat, and a late "
          "clock reading from another CPU never refills it",
          "[bpf-logic]")
{
    if (!bpf_tests_can_run())
        return;
    Logic logic;
    auto &config = logic.skel->bss->dw_rate_alarm_config;
    config.threshold_bps[DW_ALARM_SCOPE_PROCESS] = 10 * kMiB;  // 10 MiB/s
    config.burst_ms = 500;                                      // holds 5 MiB
    config.repeat_ns = kSecond;
    config.enabled_scopes = 1u << DW_ALARM_SCOPE_PROCESS;
    const uint64_t t0 = 5000 * kSecond;
    // A new key starts full: 5 MiB, minus the write.
    RateCase r = logic.add(7, kMiB, t0);
    CHECK(r.tokens == 4 * kMiB);
    CHECK(r.last_alarm_ns == 0);
    // 5 MiB more at once runs it dry: an alarm.
    r = logic.add(7, 5 * kMiB, t0);
    CHECK(r.tokens == -kMiB);
    CHECK(r.last_alarm_ns == t0);
    // Still dry 100 ms later (refilled 1 MiB, took 1 MiB): no second alarm within repeat_ns.
    r = logic.add(7, kMiB, t0 + kSecond / 10);
    CHECK(r.tokens == -kMiB);
    CHECK(r.last_alarm_ns == t0);
    // A reading older than the bucket's last refill (another CPU's later one got there first):
    // no refill. (It used to wrap below zero, refill a full bucket and miss the alarm.)
    r = logic.add(7, kMiB, t0 + kSecond / 20);
    CHECK(r.tokens == -2 * kMiB);
    // After repeat_ns, dry again: a second alarm.
    r = logic.add(7, 20 * kMiB, t0 + kSecond + kSecond / 10);
    CHECK(r.last_alarm_ns == t0 + kSecond + kSecond / 10);
    CHECK(r.total_bytes == static_cast<uint64_t>(28 * kMiB));
    // A bucket idle for an hour is full, not more (the refill is capped at a second).
    r = logic.add(7, 0, t0 + 3600 * kSecond);
    CHECK(r.tokens == 5 * kMiB);
}

TEST_CASE("file growth: rewrites grow nothing, appends and extensions grow by what they add, a truncate lets "
          "growth count again",
          "[bpf-logic]")
{
    if (!bpf_tests_can_run())
        return;
    Logic logic;
    // Unknown file, a 4 KiB write that reached its end: counted as growth (at most its bytes).
    GrowthCase g = logic.growth({kWrite, 0, 1, 4096, 4096, 4096, 1, 0, 0, 0});
    CHECK(g.growth == 4096);
    CHECK(g.known == 4096);
    // A rewrite inside it: no growth, no map change.
    g = logic.growth({kWrite, 0, 1, 4096, 2048, 2048, 1, 0, 0, 0});
    CHECK(g.growth == 0);
    // An extension to 10 KiB by a 8 KiB write that started at 2 KiB: grew 6 KiB.
    g = logic.growth({kWrite, 0, 1, 10240, 10240, 8192, 1, 0, 0, 0});
    CHECK(g.growth == 6144);
    // Truncated at open (O_TRUNC, the only writer): known lowered, the next growth counts again.
    g = logic.growth({kOpen, 0, 1, 0, 0, 0, 1, 0, 0, 0});
    CHECK(g.known == 0);
    g = logic.growth({kWrite, 0, 1, 4096, 4096, 4096, 1, 0, 0, 0});
    CHECK(g.growth == 4096);
    // ftruncate up by 1 MiB: that is growth; down: none, and known follows.
    g = logic.growth({kSet, 0, 1, 4096 + kMiB, 0, 0, 1, 0, 0, 0});
    CHECK(g.growth == static_cast<uint64_t>(kMiB));
    g = logic.growth({kSet, 0, 1, 100, 0, 0, 1, 0, 0, 0});
    CHECK(g.growth == 0);
    CHECK(g.known == 100);
    // O_APPEND by the only writer: its bytes, with the known size raised only every 64 KiB.
    g = logic.growth({kAppend, 0, 1, 400, 0, 300, 1, 0, 0, 0});
    CHECK(g.growth == 300);
    CHECK(g.known == 100);
    g = logic.growth({kAppend, 0, 1, 65536 + 100, 0, 65136, 1, 0, 0, 0});
    CHECK(g.growth == 65136);
    CHECK(g.known == 65536 + 100);
}

TEST_CASE("file growth under two CPUs at once: concurrent extensions never count a byte twice, concurrent appends "
          "count every byte once",
          "[bpf-logic]")
{
    if (!bpf_tests_can_run())
        return;
    Logic logic;
    // Two writers extend one file through positioned writes; each call reports the end of the
    // file as the kernel would after its write (a shared i_size that only grows).
    constexpr int kWrites = 20000;
    std::atomic<int64_t> size {0};
    std::atomic<uint64_t> counted {0};
    std::atomic<bool> failed {false};
    const auto extender = [&] {
        for (int i = 0; i < kWrites; ++i) {
            const int64_t end = size.fetch_add(4096) + 4096;
            GrowthCase args {kWrite, 8, 9, end, end, 4096, 2, 0, 0, 0};
            LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
            if (bpf_prog_test_run_opts(bpf_program__fd(logic.skel->progs.file_growth), &opts) != 0)
                failed = true;
            counted += args.growth;
        }
    };
    std::thread a(extender), b(extender);
    a.join();
    b.join();
    REQUIRE_FALSE(failed);
    // Never a byte twice; a raise that lost four compare-and-swaps in a row may count less.
    CHECK(counted.load() <= static_cast<uint64_t>(size.load()));
    CHECK(counted.load() >= static_cast<uint64_t>(size.load()) * 99 / 100);
    // Appends while another writer has the file open (writers 2): every append its bytes,
    // and the known size ends at the file's end.
    size = 0;
    counted = 0;
    const auto appender = [&] {
        for (int i = 0; i < kWrites; ++i) {
            const int64_t end = size.fetch_add(300) + 300;
            GrowthCase args {kAppend, 8, 10, end, 0, 300, 2, 0, 0, 0};
            LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
            if (bpf_prog_test_run_opts(bpf_program__fd(logic.skel->progs.file_growth), &opts) != 0)
                failed = true;
            counted += args.growth;
        }
    };
    std::thread c(appender), d(appender);
    c.join();
    d.join();
    REQUIRE_FALSE(failed);
    CHECK(counted.load() == static_cast<uint64_t>(size.load()));
    const GrowthCase last = logic.growth({kWrite, 0, 10, size.load(), size.load() - 1, 0, 2, 0, 0, 0});
    CHECK(last.known <= static_cast<uint64_t>(size.load()));
    CHECK(last.known >= static_cast<uint64_t>(size.load()) - 2 * 300);
}
