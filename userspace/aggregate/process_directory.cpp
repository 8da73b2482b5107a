#include "aggregate/process_directory.h"

#include <algorithm>

namespace diskwatch {

ProcessDirectory::ProcessDirectory(Reader reader, size_t exited_retention)
    : reader_(std::move(reader)), exited_retention_(exited_retention)
{
}

void ProcessDirectory::on_event(const ProcessEvent &event)
{
    switch (event.kind) {
    case ProcessEvent::Kind::exec: {
        // A new program: what we knew of the old one (exe, name) is stale.
        auto it = records_.find(event.tgid);
        if (it != records_.end() && !it->second.exited) {
            it->second.identity.comm = event.comm;
            if (auto fresh = reader_(event.tgid))
                it->second.identity.exe = fresh->exe;
        }
        break;
    }
    case ProcessEvent::Kind::rename: {
        auto it = records_.find(event.tgid);
        if (it != records_.end() && !it->second.exited)
            it->second.identity.comm = event.comm;
        break;
    }
    case ProcessEvent::Kind::exit: {
        ProcessRecord &record = records_[event.tgid];
        // Keep the exe we read while it lived; the kernel's name at exit wins.
        record.identity.comm = event.comm;
        record.identity.uid = event.uid;
        if (!record.exited)
            exited_order_.push_back(event.tgid);
        record.exited = true;
        exits_since_take_.insert(event.tgid);
        break;
    }
    }
}

std::unordered_set<uint32_t> ProcessDirectory::take_exits()
{
    std::unordered_set<uint32_t> exits;
    exits.swap(exits_since_take_);
    return exits;
}

const ProcessRecord *ProcessDirectory::lookup(uint32_t tgid)
{
    if (auto it = records_.find(tgid); it != records_.end())
        return &it->second;
    auto identity = reader_(tgid);
    if (!identity)
        return nullptr;
    auto [it, inserted] = records_.emplace(tgid, ProcessRecord{std::move(*identity), false});
    return &it->second;
}

const ProcessRecord *ProcessDirectory::lookup_running(uint32_t tgid)
{
    auto it = records_.find(tgid);
    if (it == records_.end() || !it->second.exited)
        return lookup(tgid);
    if (auto identity = reader_(tgid))
        it->second = ProcessRecord{std::move(*identity), false};
    return &it->second;
}

void ProcessDirectory::prune()
{
    if (exited_order_.size() <= exited_retention_)
        return;
    const size_t excess = exited_order_.size() - exited_retention_;
    for (size_t i = 0; i < excess; ++i) {
        auto it = records_.find(exited_order_[i]);
        if (it != records_.end() && it->second.exited)
            records_.erase(it);
    }
    exited_order_.erase(exited_order_.begin(), exited_order_.begin() + static_cast<long>(excess));
}

}  // namespace diskwatch
