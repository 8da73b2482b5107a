// From cumulative in-kernel counters to per-interval deltas and totals.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "vocabulary/writer_records.h"

namespace diskwatch {

struct WriterDelta {
    WriterKey key;
    WriterCounts interval;  // written during this refresh interval
    WriterCounts total;     // written since the monitor started
    bool process_exited = false;
    std::vector<uint64_t> last_inodes;  // as in the latest sample of the key
};

// Keeps the last cumulative value of every kernel key. The kernel never
// resets a counter; a key is only deleted (by us) once its process has exited,
// so a delta is exact and no write racing a drain is lost.
class WriterLedger {
public:
    // finished_retention: how many keys of exited processes keep their totals
    // (for the accumulated view) before the oldest are forgotten.
    explicit WriterLedger(size_t finished_retention = 4096) : finished_retention_(finished_retention) {}

    // One refresh. `samples` is the whole kernel map read at this instant;
    // `exited_tgids` are processes whose exit was reported before the read, so
    // their counters are final. Returns every key with a total, with the part
    // written in this interval.
    std::vector<WriterDelta> advance(const std::vector<WriterSample> &samples,
                                     const std::unordered_set<uint32_t> &exited_tgids);

    // Kernel keys whose counts are final and must be deleted from the map, so
    // the map holds live writers only. Cleared by the call.
    std::vector<WriterKey> take_keys_to_delete();

    // Keys of processes that vanished without an exit record (one lost to a
    // full ring buffer): the caller checks liveness and passes them back.
    std::vector<uint32_t> live_tgids() const;

private:
    struct Entry {
        WriterCounts last_cumulative;
        WriterCounts total;
        std::vector<uint64_t> last_inodes;
        bool finished = false;
    };
    std::unordered_map<WriterKey, Entry, WriterKeyHash> entries_;
    std::deque<WriterKey> finished_order_;
    std::vector<WriterKey> to_delete_;
    size_t finished_retention_;
};

}  // namespace diskwatch
