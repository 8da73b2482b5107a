// Owns the loaded BPF programs (RAII over the libbpf skeleton) and reads what
// they count. Destroying it detaches every program and frees every map.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aggregate/process_directory.h"
#include "aggregate/write_report.h"
#include "aggregate/writer_ledger.h"
#include "kernel/hooks.h"

struct diskwatch_bpf;
struct ring_buffer;
struct bpf_link;

namespace diskwatch {

struct ProgramStats {
    std::string name;
    uint64_t run_count = 0;
    uint64_t run_time_ns = 0;  // needs kernel.bpf_stats_enabled=1
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

    // Waits up to timeout_ms for lifecycle records and hands each to
    // `on_event`. Returns the number consumed, or a negative errno.
    int poll_events(int timeout_ms, const std::function<void(const ProcessEvent &)> &on_event);
    // The whole writer map, summed over CPUs.
    std::vector<WriterSample> read_writers() const;
    // Deletes keys whose counts are final (their process has exited).
    void delete_writers(const std::vector<WriterKey> &keys) const;
    DropCounters read_drops() const;
    std::vector<ProgramStats> program_stats() const;

private:
    WriteTracer() = default;
    static int on_ring_record(void *context, void *data, size_t size);
    // Opens and loads the object with exactly these programs enabled.
    bool load(const std::vector<std::string> &required, const std::vector<std::string> &optional,
              std::string *error);

    diskwatch_bpf *skel_ = nullptr;
    ring_buffer *events_ = nullptr;
    HookFamily family_ = HookFamily::tp_btf;
    std::vector<std::string> attached_;
    std::vector<std::string> missing_;
    std::vector<bpf_link *> links_;
    const std::function<void(const ProcessEvent &)> *current_handler_ = nullptr;
    int possible_cpus_ = 1;
};

}  // namespace diskwatch
