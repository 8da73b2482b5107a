// The flight recorder's store (recorder/record_store.h): records come back
// whole and in order, the ring never grows past its cap, a torn tail is
// skipped with a warning and written over, and one writer holds a store.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "recorder/record_store.h"

using namespace diskwatch;

namespace {

struct TempDir {
    std::string path;
    TempDir()
    {
        char pattern[] = "/tmp/dw-store-XXXXXX";
        REQUIRE(::mkdtemp(pattern));
        path = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

StoreLayout small_layout()
{
    StoreLayout layout;
    layout.max_bytes = 1 << 20;  // 768 KiB fine in 8 segments of 96 KiB, 256 KiB coarse
    return layout;
}

// A payload that does not compress away: its size on disk is its size.
std::string payload_of(int i, size_t size = 3000)
{
    std::string text = "record " + std::to_string(i) + ":";
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u + 1;
    while (text.size() < size) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        text.push_back(static_cast<char>('a' + x % 26));
    }
    return text;
}

uint64_t allocated_bytes(const std::string &dir)
{
    uint64_t total = 0;
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
        struct stat st {};
        REQUIRE(::stat(entry.path().c_str(), &st) == 0);
        total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    return total;
}

}  // namespace

TEST_CASE("record store: records come back whole, in order, by tier and time", "[recorder]")
{
    TempDir dir;
    std::string error;
    {
        auto writer = RecordWriter::open(dir.path, small_layout(), &error);
        REQUIRE(writer);
        for (int i = 0; i < 20; ++i)
            REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, 1000 * i, payload_of(i), &error));
        REQUIRE(writer->append(RecordTier::coarse, RecordKind::interval, 5000, payload_of(99), &error));
        CHECK(writer->reservation().reserved);
    }
    const StoreReading all = read_store(dir.path, 0, INT64_MAX);
    CHECK(all.warnings.empty());
    REQUIRE(all.records.size() == 21);
    for (int i = 0; i < 20; ++i) {
        CHECK(all.records[i].tier == RecordTier::fine);
        CHECK(all.records[i].ts_ms == 1000 * i);
        CHECK(all.records[i].payload == payload_of(i));
    }
    CHECK(all.records[20].tier == RecordTier::coarse);
    CHECK(all.records[20].payload == payload_of(99));
    CHECK(*all.oldest_ms == 0);
    CHECK(*all.newest_ms == 19000);

    const StoreReading window = read_store(dir.path, 5000, 7000, RecordTier::fine);
    REQUIRE(window.records.size() == 3);
    CHECK(window.records.front().ts_ms == 5000);
}

TEST_CASE("record store: the ring drops the oldest and never takes more than its cap", "[recorder]")
{
    TempDir dir;
    std::string error;
    const StoreLayout layout = small_layout();
    auto writer = RecordWriter::open(dir.path, layout, &error);
    REQUIRE(writer);
    const uint64_t reserved = allocated_bytes(dir.path);
    CHECK(reserved <= layout.max_bytes + 4096);  // the segments, and a lock file of one block at most
    CHECK(reserved >= layout.max_bytes - 8 * 4096 * 2);
    for (int i = 0; i < 2000; ++i)  // ~6 MB of records through a 768 KiB tier
        REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, i, payload_of(i), &error));
    writer->sync();
    CHECK(allocated_bytes(dir.path) == reserved);
    const StoreReading reading = read_store(dir.path, 0, INT64_MAX, RecordTier::fine);
    CHECK(reading.warnings.empty());
    REQUIRE(reading.records.size() > 150);
    CHECK(reading.records.back().ts_ms == 1999);
    // Contiguous and in order: what is left is the newest, with no hole.
    for (size_t i = 1; i < reading.records.size(); ++i)
        CHECK(reading.records[i].ts_ms == reading.records[i - 1].ts_ms + 1);
    CHECK(reading.records.front().ts_ms > 1000);
}

TEST_CASE("record store: a torn tail is skipped with a warning, and a restarted writer writes over it", "[recorder]")
{
    TempDir dir;
    std::string error;
    {
        auto writer = RecordWriter::open(dir.path, small_layout(), &error);
        REQUIRE(writer);
        for (int i = 0; i < 5; ++i)
            REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, i, payload_of(i), &error));
    }
    // A crash in the middle of the fifth record's write: its second half never reached the disk.
    const StoreReading before = read_store(dir.path, 0, INT64_MAX, RecordTier::fine);
    REQUIRE(before.records.size() == 5);
    const std::string segment = dir.path + "/fine.00";
    const int fd = ::open(segment.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    // Find the fifth record by scanning for its magic after the fourth.
    std::string data(200000, '\0');
    REQUIRE(::pread(fd, data.data(), data.size(), 0) > 0);
    size_t at = 64;
    for (int i = 0; i < 4; ++i) {
        uint32_t stored = 0;
        std::memcpy(&stored, data.data() + at + 4, 4);
        at += (40 + stored + 7) / 8 * 8;
    }
    const std::string garbage(500, 'X');
    REQUIRE(::pwrite(fd, garbage.data(), garbage.size(), static_cast<off_t>(at + 100)) == 500);
    ::close(fd);

    const StoreReading torn = read_store(dir.path, 0, INT64_MAX, RecordTier::fine);
    CHECK(torn.records.size() == 4);
    REQUIRE(torn.warnings.size() == 1);
    CHECK_THAT(torn.warnings[0], Catch::Contains("torn record"));

    // The next agent continues after the last whole record: the torn one is written over.
    {
        auto writer = RecordWriter::open(dir.path, small_layout(), &error);
        REQUIRE(writer);
        REQUIRE(writer->append(RecordTier::fine, RecordKind::agent_start, 100, "restart", &error));
        REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, 101, payload_of(101), &error));
    }
    const StoreReading after = read_store(dir.path, 0, INT64_MAX, RecordTier::fine);
    CHECK(after.warnings.empty());
    REQUIRE(after.records.size() == 6);
    CHECK(after.records[4].kind == RecordKind::agent_start);
    CHECK(after.records[4].payload == "restart");
    CHECK(after.records[5].payload == payload_of(101));
}

TEST_CASE("record store: a garbage segment header and a garbage file are ignored", "[recorder]")
{
    TempDir dir;
    std::string error;
    {
        auto writer = RecordWriter::open(dir.path, small_layout(), &error);
        REQUIRE(writer);
        for (int i = 0; i < 3; ++i)
            REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, i, payload_of(i), &error));
    }
    const int fd = ::open((dir.path + "/fine.00").c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, "garbage!", 8, 0) == 8);
    ::close(fd);
    const StoreReading reading = read_store(dir.path, 0, INT64_MAX);
    CHECK(reading.records.empty());
    // A writer reuses it: the records after its header are another generation's.
    auto writer = RecordWriter::open(dir.path, small_layout(), &error);
    REQUIRE(writer);
    REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, 7, payload_of(7), &error));
    writer.reset();
    const StoreReading again = read_store(dir.path, 0, INT64_MAX);
    REQUIRE(again.records.size() == 1);
    CHECK(again.records[0].ts_ms == 7);
}

TEST_CASE("record store: one writer at a time, and a new layout starts a new store and says so", "[recorder]")
{
    TempDir dir;
    std::string error, notice;
    auto first = RecordWriter::open(dir.path, small_layout(), &error);
    REQUIRE(first);
    REQUIRE(first->append(RecordTier::fine, RecordKind::interval, 1, payload_of(1), &error));
    CHECK_FALSE(RecordWriter::open(dir.path, small_layout(), &error));
    CHECK_THAT(error, Catch::Contains("another agent is recording"));
    first.reset();

    StoreLayout bigger = small_layout();
    bigger.max_bytes = 2 << 20;
    auto second = RecordWriter::open(dir.path, bigger, &error, &notice);
    REQUIRE(second);
    CHECK_THAT(notice, Catch::Contains("history"));
    second.reset();
    CHECK(read_store(dir.path, 0, INT64_MAX).records.empty());
    CHECK(allocated_bytes(dir.path) <= bigger.max_bytes + 4096);
}

TEST_CASE("record store: retention empties the segments older than it", "[recorder]")
{
    TempDir dir;
    std::string error;
    auto writer = RecordWriter::open(dir.path, small_layout(), &error);
    REQUIRE(writer);
    for (int i = 0; i < 200; ++i)  // several segments
        REQUIRE(writer->append(RecordTier::fine, RecordKind::interval, i * 1000, payload_of(i), &error));
    writer->expire(150 * 1000);
    writer->sync();
    const StoreReading reading = read_store(dir.path, 0, INT64_MAX, RecordTier::fine);
    REQUIRE_FALSE(reading.records.empty());
    CHECK(reading.records.back().ts_ms == 199000);
    // Whole segments go: what is left starts in the segment that holds 150 s.
    CHECK(reading.records.front().ts_ms > 100 * 1000);
    CHECK(reading.records.front().ts_ms <= 150 * 1000);
}

TEST_CASE("record store: a missing directory is an empty reading that says so", "[recorder]")
{
    const StoreReading reading = read_store("/nonexistent/dw-recorder", 0, INT64_MAX);
    CHECK(reading.records.empty());
    REQUIRE(reading.warnings.size() == 1);
    CHECK_THAT(reading.warnings[0], Catch::Contains("no flight record"));
}
