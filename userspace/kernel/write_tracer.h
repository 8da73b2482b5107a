// Owns the loaded BPF programs (RAII over the libbpf skeleton) and reads what
// they count. Destroying it detaches every program and frees every map.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernel/hooks.h"
#include "vocabulary/drop_reasons.h"
#include "vocabulary/writer_records.h"

struct diskwatch_bpf;
struct ring_buffer;
struct bpf_link;
struct dw_writer_key;     // include/diskwatch/abi.h
struct dw_writer_counts;

namespace diskwatch {

struct ProgramStats {
    std::string name;
    uint64_t run_count = 0;
    uint64_t run_time_ns = 0;  // needs kernel.bpf_stats_enabled=1
};

// A rate alarm from the kernel (struct dw_rate_alarm_event): a process or a
// cgroup ran its token bucket dry.
struct RateAlarm {
    enum class Scope { process, cgroup };
    Scope scope = Scope::process;
    uint32_t tgid = 0;        // the writer whose write crossed
    uint64_t cgroup_id = 0;
    uint64_t id = 0;          // tgid or cgroup id, by scope
    uint64_t total_bytes = 0; // the bucket's byte count
    uint64_t ts_ns = 0;
};

// What the kernel's rate buckets do (bpf/rate_alarm.bpf.h). A scope that is
// on with a threshold of 0 counts bytes and never alarms.
struct RateAlarmSettings {
    bool process = false;
    uint64_t process_threshold_bps = 0;
    bool cgroup = false;
    uint64_t cgroup_threshold_bps = 0;
    uint64_t burst_ms = 250;   // bucket capacity, in ms of the threshold
    // At most one alarm per key this often. While a subject writes faster
    // than the lowest rate, its alarms are what makes the agent look at its
    // window: a budget crossed mid-burst is seen within this (plus the
    // agent's 20 ms between alarm evaluations), not at the next interval.
    uint64_t repeat_ms = 25;
};

// A record of the kernel's throttle (struct dw_throttle_event): the kernel
// stopped a writer (a wake-up for the continuer), or someone other than the
// agent sent SIGCONT to a writer it holds stopped.
struct ThrottleEvent {
    enum class Kind { stopped, defied };
    Kind kind = Kind::stopped;
    RateAlarm::Scope scope = RateAlarm::Scope::process;
    uint64_t id = 0;  // the throttle's tgid or cgroup id
    uint32_t tgid = 0;  // the writer
    uint32_t sender_tgid = 0;  // defied: who sent SIGCONT
    uint32_t sender_uid = 0;
    std::string sender_comm;
};

// A throttle's numbers in the kernel (struct dw_throttle).
struct KernelThrottleNumbers {
    double allowance_bytes = 0;  // now (refilled to this moment, capped at the bank)
    uint64_t stops = 0;
    uint64_t stop_failures = 0;
    uint64_t charged_bytes = 0;
    uint64_t defied = 0;
};

// A writer the kernel stopped for a throttle (dw_throttle_stopped).
struct KernelStoppedWriter {
    uint32_t tgid = 0;
    RateAlarm::Scope scope = RateAlarm::Scope::process;
    uint64_t id = 0;
    double start_boot_s = 0;  // the process's start, seconds after boot, in clock ticks as /proc/PID/stat
};

class WriteTracer {
public:
    // Opens the object, keeps only `family`'s programs, loads and attaches
    // them. On failure returns nullptr and says why in *error.
    static std::unique_ptr<WriteTracer> start(HookFamily family, std::string *error);
    ~WriteTracer();
    WriteTracer(const WriteTracer &) = delete;
    WriteTracer &operator=(const WriteTracer &) = delete;

    HookFamily family() const { return family_; }
    const std::vector<std::string> &attached_programs() const { return attached_; }
    // Optional programs (optional_programs_of) this kernel did not load or
    // attach, with the reason: those write paths are not counted.
    const std::vector<std::string> &missing_programs() const { return missing_; }
    // The tp_btf write hook reads struct file with direct loads
    // (bpf_rdonly_cast, 6.2+) rather than probe reads.
    bool typed_file_reads() const { return typed_file_reads_; }

    // Waits up to timeout_ms (0: not at all) for a wake-up: a rate alarm,
    // the lifecycle records filling the ring buffer past a threshold, or
    // wake(); then hands every record waiting, lifecycle ones included (they
    // wake no one by themselves), to `on_event`. Returns the number consumed,
    // or a negative errno.
    // With a watched fd (watch_fd), *watched_ready says whether it woke us.
    int poll_events(int timeout_ms, const std::function<void(const ProcessEvent &)> &on_event,
                    bool *watched_ready = nullptr);
    // One more fd that ends a poll_events() wait (e.g. /proc/self/mountinfo
    // for EPOLLPRI: a container's overlay appeared); false when epoll refuses it.
    bool watch_fd(int fd, uint32_t events);
    // Ends a poll_events() wait early, from any thread or a signal handler.
    void wake() const;
    // True when the kernel changed the writer map or a drop counter since the
    // previous call (the first call: true). Call it just before reading them;
    // false means both still hold what the previous read returned. No system
    // call: a swap in the skeleton's mmap of .bss (dw_counters_moved).
    bool take_counters_moved() const;
    // The whole writer map, summed over CPUs.
    std::vector<WriterSample> read_writers() const;
    // Deletes keys whose counts are final (their process has exited).
    void delete_writers(const std::vector<WriterKey> &keys) const;
    DropCounters read_drops() const;
    std::vector<ProgramStats> program_stats() const;

    // Rate alarms: settings take effect at once (no reload); alarms reach
    // `handler` from poll_events(). The handler stays set until replaced.
    void set_rate_alarms(const RateAlarmSettings &settings);
    void set_rate_alarm_handler(std::function<void(const RateAlarm &)> handler);

    // Throttles held in the kernel (bpf/throttle.bpf.h). Thread-safe (map
    // operations and atomics only). start: the subject's writes are charged
    // to an allowance refilled at rate_bps (banking at most burst_bytes,
    // starting empty) and a writer is stopped at the write that overdraws it.
    // owner_start_boot_s (process scope): the process's start, as read from
    // /proc/PID/stat; a later process on the pid is not charged. 0: any.
    bool start_throttle(RateAlarm::Scope scope, uint64_t id, uint64_t rate_bps, uint64_t burst_bytes,
                        double owner_start_boot_s, std::string *error);
    // No more stops for it (writers it stopped stay so until continued).
    void end_throttle(RateAlarm::Scope scope, uint64_t id);
    std::optional<KernelThrottleNumbers> throttle_numbers(RateAlarm::Scope scope, uint64_t id) const;
    // Every writer the kernel holds stopped, and forgetting one (before it is continued).
    std::vector<KernelStoppedWriter> stopped_writers() const;
    void forget_stopped(uint32_t tgid) const;
    // Never stopped, and its SIGCONTs are no defiance (the agent, its guard, a protected process).
    void exempt(uint32_t tgid) const;
    void unexempt(uint32_t tgid) const;
    // The continuer runs: stops are allowed for the next second (no system call).
    void beat_throttles() const;
    void set_throttle_event_handler(std::function<void(const ThrottleEvent &)> handler);

private:
    WriteTracer() = default;
    static int on_ring_record(void *context, void *data, size_t size);
    // Loads the required programs with as many of `optional` as load;
    // `optional` is left holding those, missing_ names the others.
    bool load_family(const std::vector<std::string> &required, std::vector<std::string> *optional,
                     std::string *error);
    // Opens and loads the object with exactly these programs enabled.
    bool load(const std::vector<std::string> &required, const std::vector<std::string> &optional,
              std::string *error);
    void set_throttled_scopes_locked();  // throttles_mutex_ held
    // read_writers() through bpf_map_lookup_batch; false if the kernel refuses.
    bool read_writers_batched(std::vector<WriterSample> *samples) const;

    diskwatch_bpf *skel_ = nullptr;
    ring_buffer *events_ = nullptr;
    int wait_fd_ = -1;  // epoll: the events ring buffer and wake_fd_
    int wake_fd_ = -1;  // eventfd
    int watched_fd_ = -1;  // watch_fd(): the caller's, not closed here
    HookFamily family_ = HookFamily::tp_btf;
    std::vector<std::string> attached_;
    std::vector<std::string> missing_;
    std::vector<bpf_link *> links_;
    const std::function<void(const ProcessEvent &)> *current_handler_ = nullptr;
    std::function<void(const RateAlarm &)> rate_alarm_handler_;
    std::function<void(const ThrottleEvent &)> throttle_event_handler_;
    // Throttles in dw_throttles, per scope (the throttled_scopes bits).
    std::mutex throttles_mutex_;
    int throttles_[2] = {0, 0};
    int possible_cpus_ = 1;
    bool typed_file_reads_ = false;
    bool sigcont_restop_ = false;
    uint32_t parts_off_ = 0;  // DW_PART_* left out for scripts/bench (kernel/bench_parts.h), read once at start
    mutable bool batch_lookup_unsupported_ = false;
    mutable bool counters_read_ = false;
    // read_writers_batched()'s buffers, kept: a refresh allocates nothing for them.
    mutable std::vector<dw_writer_key> batch_keys_;
    mutable std::vector<dw_writer_counts> batch_values_;
};

}  // namespace diskwatch
