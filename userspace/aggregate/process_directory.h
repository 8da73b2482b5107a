// Who a tgid is, kept across its exit so a short-lived writer keeps its name.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "resolve/processes.h"
#include "vocabulary/writer_records.h"

namespace diskwatch {

struct ProcessRecord {
    ProcessIdentity identity;
    bool exited = false;
};

class ProcessDirectory {
public:
    using Reader = std::function<std::optional<ProcessIdentity>(uint32_t tgid)>;

    // reader: how to look a live process up (read_process_identity in the
    // tool, a fixture in tests).
    explicit ProcessDirectory(Reader reader, size_t exited_retention = 8192);

    // Lifecycle records from the ring buffer, in order.
    void on_event(const ProcessEvent &event);
    // Exits reported since the last call: their kernel counters are final.
    std::unordered_set<uint32_t> take_exits();
    // The process's identity: remembered, else read now (and remembered).
    const ProcessRecord *lookup(uint32_t tgid);
    // The same, for a process the caller knows is running (its counters saw no
    // exit): a remembered record of an *earlier* process that had this pid and
    // exited is stale (pids are recycled), so it is replaced by a fresh read.
    const ProcessRecord *lookup_running(uint32_t tgid);
    // Forget exited processes beyond the retention bound (oldest first).
    void prune();
    size_t size() const { return records_.size(); }

private:
    Reader reader_;
    std::unordered_map<uint32_t, ProcessRecord> records_;
    std::unordered_map<uint32_t, ProcessEvent> exits_pending_;
    std::unordered_set<uint32_t> exits_since_take_;
    std::vector<uint32_t> exited_order_;
    size_t exited_retention_;
};

}  // namespace diskwatch
