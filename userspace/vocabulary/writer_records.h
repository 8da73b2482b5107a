// What the kernel hands userspace about writers, in userspace's words: the
// twins of include/diskwatch/abi.h's dw_writer_key, dw_writer_counts and
// dw_process_event. Here, at the bottom, because the loader (kernel/) reads
// them and the aggregator (aggregate/) sums them: neither owns the other.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace diskwatch {

// Userspace twin of struct dw_writer_key (include/diskwatch/abi.h).
struct WriterKey {
    uint64_t cgroup_id = 0;
    uint32_t tgid = 0;
    uint32_t dev = 0;  // kernel dev_t
    bool operator==(const WriterKey &) const = default;
};

struct WriterKeyHash {
    size_t operator()(const WriterKey &key) const noexcept
    {
        return std::hash<uint64_t>()(key.cgroup_id * 0x9e3779b97f4a7c15ull ^ (uint64_t(key.tgid) << 32 | key.dev));
    }
};

// Userspace twin of struct dw_writer_counts, summed over CPUs.
struct WriterCounts {
    uint64_t write_bytes = 0;
    uint64_t write_calls = 0;
    uint64_t growth_bytes = 0;
    uint64_t nospace_failures = 0;  // write-path calls that failed with ENOSPC or EDQUOT

    WriterCounts &operator+=(const WriterCounts &other)
    {
        write_bytes += other.write_bytes;
        write_calls += other.write_calls;
        growth_bytes += other.growth_bytes;
        nospace_failures += other.nospace_failures;
        return *this;
    }
    bool is_zero() const
    {
        return write_bytes == 0 && write_calls == 0 && growth_bytes == 0 && nospace_failures == 0;
    }
};

struct WriterSample {
    WriterKey key;
    WriterCounts cumulative;
    std::vector<uint64_t> last_inodes;  // the files (inode numbers on key.dev) it wrote last, per CPU
};

// Userspace form of struct dw_process_event.
struct ProcessEvent {
    enum class Kind { exec, exit, rename };
    Kind kind = Kind::exec;
    uint32_t tgid = 0;
    uint32_t ppid = 0;
    uint32_t uid = 0;
    uint64_t cgroup_id = 0;
    std::string comm;
};

}  // namespace diskwatch
