#include "aggregate/writer_ledger.h"

namespace diskwatch {

namespace {

uint64_t grown_by(uint64_t now, uint64_t before)
{
    // A key deleted by us and re-created by the kernel restarts from zero.
    return now >= before ? now - before : now;
}

}  // namespace

std::vector<WriterDelta> WriterLedger::advance(const std::vector<WriterSample> &samples,
                                               const std::unordered_set<uint32_t> &exited_tgids)
{
    std::unordered_map<WriterKey, WriterCounts, WriterKeyHash> interval;
    interval.reserve(samples.size());
    for (const auto &sample : samples) {
        Entry &entry = entries_[sample.key];
        if (entry.finished) {
            // The pid was reused by a new process before we deleted the key.
            entry.finished = false;
            entry.last_cumulative = {};
        }
        WriterCounts delta;
        delta.write_bytes = grown_by(sample.cumulative.write_bytes, entry.last_cumulative.write_bytes);
        delta.write_calls = grown_by(sample.cumulative.write_calls, entry.last_cumulative.write_calls);
        delta.growth_bytes = grown_by(sample.cumulative.growth_bytes, entry.last_cumulative.growth_bytes);
        delta.nospace_failures =
            grown_by(sample.cumulative.nospace_failures, entry.last_cumulative.nospace_failures);
        entry.last_cumulative = sample.cumulative;
        if (!sample.last_inodes.empty())
            entry.last_inodes = sample.last_inodes;
        entry.total += delta;
        interval[sample.key] = delta;
        if (exited_tgids.count(sample.key.tgid)) {
            entry.finished = true;
            entry.last_cumulative = {};
            finished_order_.push_back(sample.key);
            to_delete_.push_back(sample.key);
        }
    }

    std::vector<WriterDelta> deltas;
    deltas.reserve(entries_.size());
    for (const auto &[key, entry] : entries_) {
        WriterDelta delta;
        delta.key = key;
        if (auto it = interval.find(key); it != interval.end())
            delta.interval = it->second;
        delta.total = entry.total;
        delta.process_exited = entry.finished;
        delta.last_inodes = entry.last_inodes;
        deltas.push_back(delta);
    }

    while (finished_order_.size() > finished_retention_) {
        auto it = entries_.find(finished_order_.front());
        if (it != entries_.end() && it->second.finished)
            entries_.erase(it);
        finished_order_.pop_front();
    }
    return deltas;
}

std::vector<WriterKey> WriterLedger::take_keys_to_delete()
{
    std::vector<WriterKey> keys;
    keys.swap(to_delete_);
    return keys;
}

std::vector<uint32_t> WriterLedger::live_tgids() const
{
    std::unordered_set<uint32_t> tgids;
    for (const auto &[key, entry] : entries_)
        if (!entry.finished)
            tgids.insert(key.tgid);
    return {tgids.begin(), tgids.end()};
}

}  // namespace diskwatch
