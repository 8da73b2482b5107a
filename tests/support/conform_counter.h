// Test support: the byte counter the conformance writers (dw-conform-writer)
// share with the test. A small file on tmpfs (no writeback: its stores are no
// disk writes of anyone's), mapped MAP_SHARED by the writer, its threads and
// forked children, and by the test. Each process adds what the kernel said it
// wrote to its slot and to the total, so the test samples the writer's OWN
// bytes whenever it likes, also while the writer is stopped.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace diskwatch::test {

class ConformCounter {
public:
    static constexpr int kSlots = 1023;  // slot 0: the writer itself; 1..: its forked children

    // Makes (or truncates) the file at `path`, zeroed, mode 0600.
    static void create(const std::string &path)
    {
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::ftruncate(fd, sizeof(Layout)) != 0) {
            if (fd >= 0)
                ::close(fd);
            throw std::runtime_error("ConformCounter: cannot make " + path);
        }
        ::close(fd);
    }

    // Maps an existing counter file.
    static ConformCounter open(const std::string &path)
    {
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0)
            throw std::runtime_error("ConformCounter: cannot open " + path);
        void *map = ::mmap(nullptr, sizeof(Layout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (map == MAP_FAILED)
            throw std::runtime_error("ConformCounter: cannot map " + path);
        return ConformCounter(static_cast<Layout *>(map));
    }

    ConformCounter(ConformCounter &&other) noexcept : layout_(other.layout_) { other.layout_ = nullptr; }
    ConformCounter &operator=(ConformCounter &&) = delete;
    ConformCounter(const ConformCounter &) = delete;
    ~ConformCounter()
    {
        if (layout_)
            ::munmap(layout_, sizeof(Layout));
    }

    void add(int slot, uint64_t bytes)
    {
        layout_->slots[slot].bytes.fetch_add(bytes, std::memory_order_relaxed);
        layout_->total.fetch_add(bytes, std::memory_order_relaxed);
    }
    void set_pid(int slot, pid_t pid)
    {
        layout_->slots[slot].pid.store(static_cast<uint64_t>(pid), std::memory_order_relaxed);
        uint64_t used = layout_->used.load(std::memory_order_relaxed);
        while (used < static_cast<uint64_t>(slot + 1) &&
               !layout_->used.compare_exchange_weak(used, static_cast<uint64_t>(slot + 1))) {
        }
    }
    uint64_t total() const { return layout_->total.load(std::memory_order_relaxed); }
    int used_slots() const { return static_cast<int>(layout_->used.load(std::memory_order_relaxed)); }
    uint64_t bytes(int slot) const { return layout_->slots[slot].bytes.load(std::memory_order_relaxed); }
    pid_t pid(int slot) const { return static_cast<pid_t>(layout_->slots[slot].pid.load(std::memory_order_relaxed)); }

private:
    struct Slot {
        std::atomic<uint64_t> pid;
        std::atomic<uint64_t> bytes;
    };
    struct Layout {
        std::atomic<uint64_t> total;
        std::atomic<uint64_t> used;  // slots in use (1 + the highest slot given a pid)
        Slot slots[kSlots];
    };
    static_assert(std::atomic<uint64_t>::is_always_lock_free, "the counter is shared between processes");

    explicit ConformCounter(Layout *layout) : layout_(layout) {}
    Layout *layout_;
};

}  // namespace diskwatch::test
