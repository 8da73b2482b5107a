// The flight recorder's store (docs/explain.md, "The store"): a fixed set of
// segment files, reserved in full when they are made, so that the recorder
// goes on writing when the disk it watches is full, and never takes more than
// its cap. Two tiers share the cap: `fine` (every resolution window) and
// `coarse` (the same data downsampled to longer windows, so older history is
// kept at a lower resolution rather than dropped).
//
// Each tier is a ring: when a record does not fit in the segment being
// written, the oldest segment is reused under a new generation number. Every
// record carries its segment's generation and a CRC32 of itself, so a reader
// tells the current records from a reused segment's stale ones, and a record
// torn by a crash or a power loss from a whole one. The writer holds an
// exclusive flock on the directory's lock file: one agent records at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace diskwatch {

enum class RecordTier : uint32_t { fine = 0, coarse = 1 };
std::string_view to_string(RecordTier tier);

// What a record holds (its payload is CBOR, compressed).
enum class RecordKind : uint32_t {
    interval = 1,     // one window's aggregates (recorder/flight_recorder.h)
    agent_start = 2,  // an agent began recording: restarts show in the history
};

struct StoreLayout {
    uint64_t max_bytes = 64ull << 20;  // every segment of both tiers together
    double coarse_share = 0.25;        // of max_bytes, for the coarse tier
    uint32_t segments_per_tier = 8;    // the ring's granularity: a reuse drops 1/8 of a tier
    // Each tier's segment size (a multiple of 4 KiB), from the above.
    uint64_t segment_bytes(RecordTier tier) const;
};

// How far the reservation can be trusted, as doctor and explain say it.
struct Reservation {
    bool reserved = false;   // every segment's blocks are allocated
    std::string filesystem;  // "ext4", "btrfs", ... (statfs)
    // Empty when reserved on a filesystem that overwrites in place; otherwise
    // why the space is not a guarantee (copy-on-write, tmpfs, fallocate refused).
    std::string caveat;
};

class RecordWriter {
public:
    // Opens (and on first use makes and reserves) the store in `dir`,
    // continuing after its last whole record. nullptr with *error when the
    // directory cannot be made, is locked by another recorder, or its space
    // cannot be reserved. A store made with another layout is made again:
    // *notice says that its old history was dropped.
    static std::unique_ptr<RecordWriter> open(const std::string &dir, const StoreLayout &layout, std::string *error,
                                              std::string *notice = nullptr);
    ~RecordWriter();
    RecordWriter(const RecordWriter &) = delete;
    RecordWriter &operator=(const RecordWriter &) = delete;

    // Appends one record (payload: the caller's bytes, compressed here).
    // False with *error on an I/O error, or for a record larger than a
    // quarter of a segment (the caller trims).
    bool append(RecordTier tier, RecordKind kind, int64_t ts_ms, std::string_view payload, std::string *error);
    // fdatasync of the segments written since the last sync.
    void sync();
    // Its directory was removed under it (the files it writes are unlinked).
    bool gone() const;
    // Retention: the segments whose newest record is older than before_ms
    // are emptied (the one being written is kept).
    void expire(int64_t before_ms);
    const Reservation &reservation() const { return reservation_; }
    const std::string &dir() const { return dir_; }

private:
    struct Segment {
        int fd = -1;
        uint64_t generation = 0;  // 0: never written
        uint64_t end = 0;         // offset after its last whole record
        int64_t newest_ms = 0;    // its newest record's time
        bool dirty = false;
    };
    struct Tier {
        std::vector<Segment> segments;
        size_t current = 0;
        uint64_t segment_bytes = 0;
        uint64_t next_generation = 1;
    };
    RecordWriter() = default;
    bool start_segment(Tier &tier, RecordTier which, std::string *error);

    std::string dir_;
    int lock_fd_ = -1;
    Tier tiers_[2];
    Reservation reservation_;
};

struct StoredRecord {
    RecordTier tier = RecordTier::fine;
    RecordKind kind = RecordKind::interval;
    int64_t ts_ms = 0;
    uint64_t generation = 0;
    std::string payload;  // decompressed
};

struct StoreReading {
    std::vector<StoredRecord> records;  // by tier, then oldest first
    // A torn or corrupt record (skipped, with the rest of its segment), a
    // segment that could not be read: each said once, for a person.
    std::vector<std::string> warnings;
    uint64_t bytes_on_disk = 0;  // the segment files' allocated space
    std::optional<int64_t> oldest_ms, newest_ms;
};

// Reads the records of `dir` with from_ms <= ts_ms <= to_ms (both tiers
// unless `tier`). The store need not be closed: an agent may be writing it.
// Headers are checked before a payload is decompressed, and only the
// records in range are. A missing directory is an empty reading with a warning.
// With `visit`, each record is handed over as it is read (oldest first, tier
// by tier) instead of kept in `records`: a reading of the whole store holds
// one segment in memory, not all of it. `want` refuses a record by its time
// before it is decompressed.
StoreReading read_store(const std::string &dir, int64_t from_ms, int64_t to_ms,
                        std::optional<RecordTier> tier = std::nullopt,
                        const std::function<void(StoredRecord &&)> &visit = {},
                        const std::function<bool(int64_t ts_ms)> &want = {});

}  // namespace diskwatch
