#include <catch2/catch.hpp>

#include <stdexcept>

#include "aggregate/writer_ledger.h"

using namespace diskwatch;

namespace {

WriterSample sample(uint32_t tgid, uint64_t cgroup, uint32_t dev, uint64_t bytes, uint64_t calls = 1)
{
    return {{cgroup, tgid, dev}, {bytes, calls, 0}};
}

const WriterDelta &find(const std::vector<WriterDelta> &deltas, uint32_t tgid)
{
    for (const auto &delta : deltas)
        if (delta.key.tgid == tgid)
            return delta;
    FAIL("no delta for tgid " << tgid);
    throw std::logic_error("unreachable: FAIL throws");
}

}  // namespace

TEST_CASE("cumulative kernel counters become per-interval deltas and totals", "[ledger]")
{
    WriterLedger ledger;
    auto first = ledger.advance({sample(10, 1, 7, 1000), sample(20, 1, 7, 50)}, {});
    CHECK(find(first, 10).interval.write_bytes == 1000);
    CHECK(find(first, 10).total.write_bytes == 1000);

    auto second = ledger.advance({sample(10, 1, 7, 1500, 3), sample(20, 1, 7, 50)}, {});
    CHECK(find(second, 10).interval.write_bytes == 500);
    CHECK(find(second, 10).interval.write_calls == 2);
    CHECK(find(second, 10).total.write_bytes == 1500);
    CHECK(find(second, 20).interval.write_bytes == 0);
    CHECK(find(second, 20).total.write_bytes == 50);
    CHECK(ledger.take_keys_to_delete().empty());
}

TEST_CASE("an exited process's final counts are kept, and its kernel keys are released", "[ledger]")
{
    WriterLedger ledger;
    ledger.advance({sample(10, 1, 7, 100)}, {});
    // It wrote 900 more, then exited before this read.
    auto deltas = ledger.advance({sample(10, 1, 7, 1000), sample(10, 2, 7, 10)}, {10});
    CHECK(find(deltas, 10).process_exited);
    auto keys = ledger.take_keys_to_delete();
    CHECK(keys.size() == 2);
    CHECK(ledger.take_keys_to_delete().empty());

    // After deletion the key is absent from the map: its row keeps its total.
    auto later = ledger.advance({}, {});
    uint64_t total = 0;
    for (const auto &delta : later) {
        CHECK(delta.interval.write_bytes == 0);
        total += delta.total.write_bytes;
    }
    CHECK(total == 1010);
    CHECK(ledger.live_tgids().empty());
}

TEST_CASE("a recycled pid starts a fresh count on its re-created key", "[ledger]")
{
    WriterLedger ledger;
    ledger.advance({sample(10, 1, 7, 5000)}, {10});
    ledger.take_keys_to_delete();
    // A new process got pid 10 and wrote 300 bytes into a fresh kernel key.
    auto deltas = ledger.advance({sample(10, 1, 7, 300)}, {});
    CHECK(find(deltas, 10).interval.write_bytes == 300);
    CHECK(find(deltas, 10).total.write_bytes == 5300);
    CHECK_FALSE(find(deltas, 10).process_exited);
}

TEST_CASE("the ledger forgets the oldest exited keys beyond its retention", "[ledger]")
{
    WriterLedger ledger(2);
    for (uint32_t tgid = 1; tgid <= 5; ++tgid)
        ledger.advance({sample(tgid, 1, 7, 10)}, {tgid});
    auto deltas = ledger.advance({}, {});
    CHECK(deltas.size() == 2);
}

TEST_CASE("growth deltas and the last files written follow each key", "[ledger][growth]")
{
    WriterLedger ledger;
    WriterSample sample;
    sample.key = {5, 300, 9};
    sample.cumulative = {8192, 2, 4096};
    sample.last_inodes = {12};
    auto first = ledger.advance({sample}, {});
    REQUIRE(first.size() == 1);
    CHECK(first[0].interval.growth_bytes == 4096);
    CHECK(first[0].last_inodes == std::vector<uint64_t>{12});
    sample.cumulative = {16384, 4, 4096};  // rewrote in place: bytes, no growth
    sample.last_inodes = {};                // a CPU that saw nothing new keeps the last known file
    auto second = ledger.advance({sample}, {});
    CHECK(second[0].interval.write_bytes == 8192);
    CHECK(second[0].interval.growth_bytes == 0);
    CHECK(second[0].total.growth_bytes == 4096);
    CHECK(second[0].last_inodes == std::vector<uint64_t>{12});
}

TEST_CASE("ENOSPC failures become deltas and totals like bytes, and keep a key that wrote nothing",
          "[ledger][nospace]")
{
    WriterLedger ledger;
    WriterSample sample;
    sample.key = {5, 301, 9};
    sample.cumulative.nospace_failures = 40;  // refused from its first write: no byte ever landed
    auto first = ledger.advance({sample}, {});
    REQUIRE(first.size() == 1);
    CHECK(first[0].interval.nospace_failures == 40);
    CHECK(first[0].interval.write_bytes == 0);
    CHECK_FALSE(first[0].interval.is_zero());
    sample.cumulative.nospace_failures = 45;
    auto second = ledger.advance({sample}, {});
    CHECK(second[0].interval.nospace_failures == 5);
    CHECK(second[0].total.nospace_failures == 45);
    // The key deleted and re-created by the kernel: counts restart from zero.
    sample.cumulative.nospace_failures = 2;
    auto third = ledger.advance({sample}, {});
    CHECK(third[0].interval.nospace_failures == 2);
    CHECK(third[0].total.nospace_failures == 47);
}
