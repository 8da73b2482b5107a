#include "kernel/write_tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <spdlog/spdlog.h>

#include "kernel/bench_parts.h"
#include "kernel/test_map_sizes.h"

#include "diskwatch/abi.h"  // before the skeleton: it names struct dw_config
#include "diskwatch.skel.h"

namespace diskwatch {


std::unique_ptr<WriteTracer> WriteTracer::start(HookFamily family, std::string *error)
{
    std::unique_ptr<WriteTracer> tracer(new WriteTracer());
    tracer->family_ = family;
    int possible = libbpf_num_possible_cpus();
    tracer->possible_cpus_ = possible > 0 ? possible : 1;

    if (family == HookFamily::tracepoint) {
        std::string mount_error;
        if (!ensure_tracefs(&mount_error)) {
            *error = "classic tracepoints need tracefs: " + mount_error;
            return nullptr;
        }
    }

    // The tp_btf write hook reads struct file through bpf_rdonly_cast where
    // the kernel has it (6.2+, a35b9af4ec2c): direct loads, not probe reads.
    tracer->typed_file_reads_ = family == HookFamily::tp_btf && kernel_btf_has_function("bpf_rdonly_cast");
    // A SIGCONT to a throttled writer is undone from signal_generate where
    // the kernel can signal another task (6.13+, 6280cf718db0).
    tracer->sigcont_restop_ = kernel_btf_has_function("bpf_send_signal_task");
    const auto required = programs_of(family);
    // scripts/bench can measure the write path without some of its parts
    // (kernel/bench_parts.h): read once, said once, kept for every load
    // attempt below; the page-dirtying hook is then not even loaded.
    std::string parts_left_out;
    if (!read_bench_parts_off(&tracer->parts_off_, &parts_left_out, error))
        return nullptr;
    if (tracer->parts_off_)
        spdlog::warn("{}", parts_left_out);
    const bool without_dirty_hook = (tracer->parts_off_ & DW_PART_DIRTY_FOLIO_HOOK) != 0;
    const auto optional_programs = [&] {
        auto programs = optional_programs_of(family);
        if (without_dirty_hook)
            std::erase_if(programs, [](const std::string &name) { return name.find("dirty_folio") != std::string::npos; });
        return programs;
    };
    auto optional = optional_programs();
    std::string load_error;
    bool loaded = tracer->load_family(required, &optional, &load_error);
    if (!loaded && tracer->typed_file_reads_) {
        // A kernel whose BTF names the kfunc but whose verifier refuses the
        // typed reads still gets the probe-read path.
        const std::string typed_error = load_error;
        tracer->typed_file_reads_ = false;
        tracer->missing_.clear();
        optional = optional_programs();
        loaded = tracer->load_family(required, &optional, &load_error);
        if (loaded)
            spdlog::warn("typed file reads (bpf_rdonly_cast) refused, using probe reads: {}", typed_error);
    }
    if (!loaded) {
        *error = load_error;
        return nullptr;
    }
    // Attach one by one, so an error names the program that failed.
    for (const auto &name : required) {
        bpf_program *program = bpf_object__find_program_by_name(tracer->skel_->obj, name.c_str());
        if (!program) {  // hooks.cpp names programs through the skeleton: a build out of step
            *error = "attaching " + name + " failed: the BPF object has no such program";
            return nullptr;
        }
        bpf_link *link = bpf_program__attach(program);
        if (!link) {
            *error = "attaching " + name + " (" + bpf_program__section_name(program) +
                     ") failed: " + errno_text(errno);
            return nullptr;
        }
        // The skeleton destroys links it knows of; keep ours beside it.
        tracer->links_.push_back(link);
        tracer->attached_.push_back(name + " (" + bpf_program__section_name(program) + ")");
    }
    for (const auto &name : optional) {
        bpf_program *program = bpf_object__find_program_by_name(tracer->skel_->obj, name.c_str());
        bpf_link *link = program ? bpf_program__attach(program) : nullptr;
        if (!link) {
            tracer->missing_.push_back(name + ": attach: " + (program ? errno_text(errno) : "not in the BPF object"));
            continue;
        }
        tracer->links_.push_back(link);
        tracer->attached_.push_back(name + " (" + bpf_program__section_name(program) + ")");
    }
    tracer->events_ = ring_buffer__new(bpf_map__fd(tracer->skel_->maps.dw_events), &WriteTracer::on_ring_record,
                                       tracer.get(), nullptr);
    if (!tracer->events_) {
        *error = "opening the events ring buffer failed: " + errno_text(errno);
        return nullptr;
    }
    // Our own wait set, so that another thread (a control command) or a
    // signal handler can end a long wait: the ring buffer's map fd is
    // readable when a record woke it; the eventfd when wake() was called.
    tracer->wait_fd_ = epoll_create1(EPOLL_CLOEXEC);
    tracer->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (tracer->wait_fd_ < 0 || tracer->wake_fd_ < 0) {
        *error = "creating the event wait set failed: " + errno_text(errno);
        return nullptr;
    }
    for (int fd : {bpf_map__fd(tracer->skel_->maps.dw_events), tracer->wake_fd_}) {
        epoll_event interest {};
        interest.events = EPOLLIN;
        interest.data.fd = fd;
        if (epoll_ctl(tracer->wait_fd_, EPOLL_CTL_ADD, fd, &interest) != 0) {
            *error = "watching the events ring buffer failed: " + errno_text(errno);
            return nullptr;
        }
    }
    return tracer;
}

bool WriteTracer::load_family(const std::vector<std::string> &required, std::vector<std::string> *optional,
                              std::string *error)
{
    // Every optional program first; if the object does not load, find the
    // optional programs that this kernel cannot take, one by one.
    if (load(required, *optional, error))
        return true;
    std::vector<std::string> loadable;
    for (const auto &program : *optional) {
        std::string ignored;
        if (load(required, {program}, &ignored))
            loadable.push_back(program);
        else
            missing_.push_back(program + ": " + ignored);
    }
    *optional = loadable;
    return load(required, loadable, error);
}

bool WriteTracer::load(const std::vector<std::string> &required, const std::vector<std::string> &optional,
                       std::string *error)
{
    if (skel_) {
        diskwatch_bpf__destroy(skel_);
        skel_ = nullptr;
    }
    skel_ = diskwatch_bpf__open();
    if (!skel_) {
        *error = "opening the BPF object failed: " + errno_text(errno);
        return false;
    }
    std::vector<std::string> resized;
    if (!apply_test_map_sizes(skel_->maps.dw_writers, skel_->maps.dw_events, &resized, error))
        return false;
    for (const auto &change : resized)
        spdlog::warn("{}", change);
    // Lifecycle records wake us only past a quarter of the ring buffer; the
    // refresh timer consumes the rest (see lifecycle_wakeup_flag in the BPF
    // object).
    skel_->rodata->dw_config.events_wakeup_bytes = bpf_map__max_entries(skel_->maps.dw_events) / 4;
    skel_->rodata->dw_config.typed_file_reads = typed_file_reads_ ? 1 : 0;
    skel_->rodata->dw_config.sigcont_restop = sigcont_restop_ ? 1 : 0;
    skel_->rodata->dw_config.parts_off = parts_off_;
    bpf_program *prog;
    bpf_object__for_each_program(prog, skel_->obj)
    {
        const char *name = bpf_program__name(prog);
        const bool keep = std::find(required.begin(), required.end(), name) != required.end() ||
                          std::find(optional.begin(), optional.end(), name) != optional.end();
        bpf_program__set_autoload(prog, keep);
    }
    if (int err = diskwatch_bpf__load(skel_)) {
        *error = std::string("loading the ") + std::string(to_string(family_)) + " programs failed: " +
                 errno_text(err) + " (run with -v for the verifier log)";
        return false;
    }
    return true;
}

WriteTracer::~WriteTracer()
{
    if (wait_fd_ >= 0)
        ::close(wait_fd_);
    if (wake_fd_ >= 0)
        ::close(wake_fd_);
    if (events_)
        ring_buffer__free(events_);
    for (bpf_link *link : links_)
        bpf_link__destroy(link);
    if (skel_)
        diskwatch_bpf__destroy(skel_);
}

namespace {

RateAlarm::Scope scope_of(uint32_t abi_scope)
{
    return abi_scope == DW_ALARM_SCOPE_CGROUP ? RateAlarm::Scope::cgroup : RateAlarm::Scope::process;
}

dw_rate_key rate_key(RateAlarm::Scope scope, uint64_t id)
{
    dw_rate_key key {};
    key.id = id;
    key.scope = scope == RateAlarm::Scope::cgroup ? DW_ALARM_SCOPE_CGROUP : DW_ALARM_SCOPE_PROCESS;
    return key;
}

// bpf_ktime_get_ns()'s clock.
uint64_t monotonic_ns()
{
    timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

// A start time in nanoseconds after boot, as /proc/PID/stat says it: whole
// clock ticks (the kernel's nsec_to_clock_t truncates), so that it compares
// equal with what the rest of the agent reads there.
double boot_s_in_ticks(uint64_t boot_ns)
{
    static const auto ticks_per_s = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    const uint64_t ticks = boot_ns / (1000000000ull / ticks_per_s);
    return static_cast<double>(ticks) / static_cast<double>(ticks_per_s);
}

}  // namespace

int WriteTracer::on_ring_record(void *context, void *data, size_t size)
{
    auto *self = static_cast<WriteTracer *>(context);
    uint32_t kind = 0;
    if (size >= sizeof(kind))
        std::memcpy(&kind, data, sizeof(kind));
    if (kind == DW_EVENT_RATE_ALARM) {
        if (size < sizeof(dw_rate_alarm_event) || !self->rate_alarm_handler_)
            return 0;
        dw_rate_alarm_event raw;
        std::memcpy(&raw, data, sizeof(raw));
        RateAlarm alarm;
        alarm.scope = scope_of(raw.scope);
        alarm.tgid = raw.tgid;
        alarm.cgroup_id = raw.cgroup_id;
        alarm.id = raw.id;
        alarm.total_bytes = raw.total_bytes;
        alarm.ts_ns = raw.ts_ns;
        self->rate_alarm_handler_(alarm);
        return 0;
    }
    if (kind == DW_EVENT_THROTTLE_STOP || kind == DW_EVENT_THROTTLE_DEFIED) {
        if (size < sizeof(dw_throttle_event) || !self->throttle_event_handler_)
            return 0;
        dw_throttle_event raw;
        std::memcpy(&raw, data, sizeof(raw));
        ThrottleEvent event;
        event.kind = kind == DW_EVENT_THROTTLE_STOP ? ThrottleEvent::Kind::stopped : ThrottleEvent::Kind::defied;
        event.scope = scope_of(raw.throttle.scope);
        event.id = raw.throttle.id;
        event.tgid = raw.tgid;
        event.sender_tgid = raw.sender_tgid;
        event.sender_uid = raw.sender_uid;
        event.sender_comm.assign(raw.sender_comm, strnlen(raw.sender_comm, sizeof(raw.sender_comm)));
        self->throttle_event_handler_(event);
        return 0;
    }
    if (size < sizeof(dw_process_event) || !self->current_handler_)
        return 0;
    dw_process_event raw;
    std::memcpy(&raw, data, sizeof(raw));
    ProcessEvent event;
    switch (raw.kind) {
    case DW_EVENT_EXEC:
        event.kind = ProcessEvent::Kind::exec;
        break;
    case DW_EVENT_EXIT:
        event.kind = ProcessEvent::Kind::exit;
        break;
    case DW_EVENT_RENAME:
        event.kind = ProcessEvent::Kind::rename;
        break;
    default:
        return 0;
    }
    event.tgid = raw.tgid;
    event.ppid = raw.ppid;
    event.uid = raw.uid;
    event.cgroup_id = raw.cgroup_id;
    event.comm.assign(raw.comm, strnlen(raw.comm, sizeof(raw.comm)));
    (*self->current_handler_)(event);
    return 0;
}

bool WriteTracer::watch_fd(int fd, uint32_t events)
{
    epoll_event interest {};
    interest.events = events;
    interest.data.fd = fd;
    if (epoll_ctl(wait_fd_, EPOLL_CTL_ADD, fd, &interest) != 0)
        return false;
    watched_fd_ = fd;
    return true;
}

int WriteTracer::poll_events(int timeout_ms, const std::function<void(const ProcessEvent &)> &on_event,
                             bool *watched_ready)
{
    if (watched_ready)
        *watched_ready = false;
    if (timeout_ms > 0) {
        epoll_event ready[3];
        const int count = epoll_wait(wait_fd_, ready, 3, timeout_ms);
        if (count < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < count; ++i) {
            if (ready[i].data.fd == wake_fd_) {
                uint64_t ignored = 0;
                [[maybe_unused]] ssize_t got = ::read(wake_fd_, &ignored, sizeof(ignored));
            } else if (ready[i].data.fd == watched_fd_ && watched_fd_ >= 0 && watched_ready) {
                *watched_ready = true;
            }
        }
    }
    // Whether or not anything woke us: records submitted without a wake-up
    // are waiting too. No system call: the ring buffer is mapped.
    current_handler_ = &on_event;
    int consumed = ring_buffer__consume(events_);
    current_handler_ = nullptr;
    return consumed;
}

void WriteTracer::wake() const
{
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof(one));
}

namespace {

// One key's per-CPU values, summed.
WriterSample writer_sample(const dw_writer_key &key, const dw_writer_counts *per_cpu, size_t cpus)
{
    WriterSample sample;
    sample.key = {key.cgroup_id, key.tgid, key.dev};
    for (size_t i = 0; i < cpus; ++i) {
        const dw_writer_counts &cpu = per_cpu[i];
        sample.cumulative.write_bytes += cpu.write_bytes;
        sample.cumulative.write_calls += cpu.write_calls;
        sample.cumulative.growth_bytes += cpu.growth_bytes;
        sample.cumulative.nospace_failures += cpu.nospace_failures;
        // Each CPU remembers the last file it saw this key write.
        if (cpu.last_ino && std::find(sample.last_inodes.begin(), sample.last_inodes.end(), cpu.last_ino) ==
                                sample.last_inodes.end())
            sample.last_inodes.push_back(cpu.last_ino);
    }
    return sample;
}

constexpr uint32_t kWritersPerBatch = 256;

}  // namespace

bool WriteTracer::take_counters_moved() const
{
    // Swapped, not read then cleared: a write that lands between the two
    // would be lost. The BPF side sets it after its change (maps.bpf.h).
    const bool moved = __atomic_exchange_n(&skel_->bss->dw_counters_moved, 0u, __ATOMIC_SEQ_CST) != 0;
    const bool first = !counters_read_;
    counters_read_ = true;
    return moved || first;
}

std::vector<WriterSample> WriteTracer::read_writers() const
{
    // One bpf() call per kWritersPerBatch keys (Linux 5.6+) rather than two
    // per key: what a refresh costs grows with the live writer keys, and an
    // idle monitor refreshes forever.
    static_assert(sizeof(dw_writer_counts) % 8 == 0, "per-CPU values are laid out in 8-byte slots");
    if (!batch_lookup_unsupported_) {
        std::vector<WriterSample> samples;
        if (read_writers_batched(&samples))
            return samples;
    }
    std::vector<WriterSample> samples;
    const int fd = bpf_map__fd(skel_->maps.dw_writers);
    std::vector<dw_writer_counts> per_cpu(static_cast<size_t>(possible_cpus_));
    dw_writer_key key {}, next {};
    dw_writer_key *previous = nullptr;
    // get_next_key restarts from the first key if `previous` was deleted
    // meanwhile; we delete only after reading, so a pass sees each key once.
    while (bpf_map_get_next_key(fd, previous, &next) == 0) {
        key = next;
        previous = &key;
        if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0)
            continue;  // deleted between the two calls
        samples.push_back(writer_sample(key, per_cpu.data(), per_cpu.size()));
    }
    return samples;
}

bool WriteTracer::read_writers_batched(std::vector<WriterSample> *samples) const
{
    const int fd = bpf_map__fd(skel_->maps.dw_writers);
    const auto cpus = static_cast<size_t>(possible_cpus_);
    std::vector<dw_writer_key> &keys = batch_keys_;
    std::vector<dw_writer_counts> &values = batch_values_;
    keys.resize(kWritersPerBatch);
    values.resize(kWritersPerBatch * cpus);
    // The hash map's batch position is a bucket index (a u32 in the kernel).
    uint64_t position = 0;
    bool first = true;
    for (;;) {
        uint32_t count = kWritersPerBatch;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        const int err = bpf_map_lookup_batch(fd, first ? nullptr : &position, &position, keys.data(),
                                             values.data(), &count, &opts);
        const int error = err ? errno : 0;
        if (err && error != ENOENT) {
            // ENOSPC: one hash bucket holds more keys than a batch (this pass
            // only); anything else: a kernel without batch lookups.
            batch_lookup_unsupported_ = error != ENOSPC;
            return false;
        }
        for (uint32_t i = 0; i < count; ++i)
            samples->push_back(writer_sample(keys[i], &values[i * cpus], cpus));
        if (error == ENOENT)
            return true;  // the last batch (possibly empty)
        first = false;
    }
}

void WriteTracer::delete_writers(const std::vector<WriterKey> &keys) const
{
    const int fd = bpf_map__fd(skel_->maps.dw_writers);
    for (const auto &key : keys) {
        dw_writer_key raw {};
        raw.cgroup_id = key.cgroup_id;
        raw.tgid = key.tgid;
        raw.dev = key.dev;
        bpf_map_delete_elem(fd, &raw);
    }
}

DropCounters WriteTracer::read_drops() const
{
    const int fd = bpf_map__fd(skel_->maps.dw_errors);
    std::vector<uint64_t> per_cpu(static_cast<size_t>(possible_cpus_));
    auto total = [&](uint32_t index) {
        uint64_t sum = 0;
        if (bpf_map_lookup_elem(fd, &index, per_cpu.data()) == 0)
            for (auto value : per_cpu)
                sum += value;
        return sum;
    };
    DropCounters drops;
    for (const auto &reason : kDropReasons)
        for (uint32_t index = 0; index < DW_ERR_COUNT; ++index)
            if (reason.dw_errors & dw_error_bit(index))
                drops.*reason.counter += total(index);
    return drops;
}

std::vector<ProgramStats> WriteTracer::program_stats() const
{
    std::vector<ProgramStats> stats;
    bpf_program *prog;
    bpf_object__for_each_program(prog, skel_->obj)
    {
        if (!bpf_program__autoload(prog))
            continue;
        bpf_prog_info info {};
        uint32_t length = sizeof(info);
        if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &length) != 0)
            continue;
        stats.push_back({bpf_program__name(prog), info.run_cnt, info.run_time_ns});
    }
    return stats;
}

void WriteTracer::set_rate_alarms(const RateAlarmSettings &settings)
{
    dw_rate_alarm_config &config = skel_->bss->dw_rate_alarm_config;
    // Off first, so the hot path never sees a half-written mix.
    __atomic_store_n(&config.enabled_scopes, 0u, __ATOMIC_SEQ_CST);
    config.threshold_bps[DW_ALARM_SCOPE_PROCESS] = settings.process ? settings.process_threshold_bps : 0;
    config.threshold_bps[DW_ALARM_SCOPE_CGROUP] = settings.cgroup ? settings.cgroup_threshold_bps : 0;
    config.burst_ms = settings.burst_ms;
    config.repeat_ns = settings.repeat_ms * 1000000ull;
    const uint32_t scopes = (settings.process ? 1u << DW_ALARM_SCOPE_PROCESS : 0u) |
                            (settings.cgroup ? 1u << DW_ALARM_SCOPE_CGROUP : 0u);
    __atomic_store_n(&config.enabled_scopes, scopes, __ATOMIC_SEQ_CST);
}

void WriteTracer::set_rate_alarm_handler(std::function<void(const RateAlarm &)> handler)
{
    rate_alarm_handler_ = std::move(handler);
}

bool WriteTracer::start_throttle(RateAlarm::Scope scope, uint64_t id, uint64_t rate_bps, uint64_t burst_bytes,
                                 double owner_start_boot_s, std::string *error)
{
    const dw_rate_key key = rate_key(scope, id);
    dw_throttle throttle {};
    throttle.rate_bps = rate_bps;
    throttle.burst_bytes = static_cast<int64_t>(burst_bytes);
    throttle.allowance = 0;  // it was over its rate when the rule held: nothing banked
    throttle.last_ns = monotonic_ns();
    if (owner_start_boot_s > 0) {
        static const auto ticks_per_s = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
        throttle.tick_ns = 1000000000ull / ticks_per_s;
        throttle.owner_start_ticks = static_cast<uint64_t>(std::llround(owner_start_boot_s * static_cast<double>(ticks_per_s)));
    }
    std::lock_guard lock(throttles_mutex_);
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.dw_throttles), &key, &throttle, BPF_NOEXIST) != 0) {
        if (errno == EEXIST)
            return true;  // already held
        *error = "the kernel's throttle map refused it: " + errno_text(errno);
        return false;
    }
    const int index = scope == RateAlarm::Scope::cgroup ? 1 : 0;
    ++throttles_[index];
    set_throttled_scopes_locked();
    return true;
}

void WriteTracer::end_throttle(RateAlarm::Scope scope, uint64_t id)
{
    const dw_rate_key key = rate_key(scope, id);
    std::lock_guard lock(throttles_mutex_);
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.dw_throttles), &key) != 0)
        return;
    const int index = scope == RateAlarm::Scope::cgroup ? 1 : 0;
    throttles_[index] = std::max(0, throttles_[index] - 1);
    set_throttled_scopes_locked();
}

void WriteTracer::set_throttled_scopes_locked()
{
    const uint32_t scopes = (throttles_[0] > 0 ? 1u << DW_ALARM_SCOPE_PROCESS : 0u) |
                            (throttles_[1] > 0 ? 1u << DW_ALARM_SCOPE_CGROUP : 0u);
    __atomic_store_n(&skel_->bss->dw_rate_alarm_config.throttled_scopes, scopes, __ATOMIC_SEQ_CST);
}

std::optional<KernelThrottleNumbers> WriteTracer::throttle_numbers(RateAlarm::Scope scope, uint64_t id) const
{
    const dw_rate_key key = rate_key(scope, id);
    dw_throttle throttle {};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.dw_throttles), &key, &throttle) != 0)
        return std::nullopt;
    // As the kernel would refill it at a write now.
    const uint64_t now = monotonic_ns();
    const double elapsed_s = now > throttle.last_ns ? static_cast<double>(now - throttle.last_ns) / 1e9 : 0.0;
    KernelThrottleNumbers numbers;
    numbers.allowance_bytes = std::min(static_cast<double>(throttle.allowance) + elapsed_s * static_cast<double>(throttle.rate_bps),
                                       static_cast<double>(throttle.burst_bytes));
    numbers.stops = throttle.stops;
    numbers.stop_failures = throttle.stop_failures;
    numbers.charged_bytes = throttle.charged_bytes;
    numbers.defied = throttle.defied;
    return numbers;
}

std::vector<KernelStoppedWriter> WriteTracer::stopped_writers() const
{
    std::vector<KernelStoppedWriter> writers;
    const int fd = bpf_map__fd(skel_->maps.dw_throttle_stopped);
    uint32_t key = 0;
    uint32_t next = 0;
    const void *previous = nullptr;
    // Bounded: the map's size (a key deleted under us restarts the walk at
    // the first key; the bound keeps that from looping).
    for (int i = 0; i < DW_THROTTLE_STOPPED_MAX && bpf_map_get_next_key(fd, previous, &next) == 0; ++i) {
        key = next;
        previous = &key;
        dw_stopped_writer value {};
        if (bpf_map_lookup_elem(fd, &key, &value) != 0)
            continue;
        writers.push_back({key, scope_of(value.throttle.scope), value.throttle.id, boot_s_in_ticks(value.start_boottime_ns)});
    }
    std::sort(writers.begin(), writers.end(), [](const auto &a, const auto &b) { return a.tgid < b.tgid; });
    writers.erase(std::unique(writers.begin(), writers.end(), [](const auto &a, const auto &b) { return a.tgid == b.tgid; }),
                  writers.end());
    return writers;
}

void WriteTracer::forget_stopped(uint32_t tgid) const
{
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.dw_throttle_stopped), &tgid);
}

void WriteTracer::exempt(uint32_t tgid) const
{
    const uint8_t yes = 1;
    bpf_map_update_elem(bpf_map__fd(skel_->maps.dw_throttle_exempt), &tgid, &yes, BPF_ANY);
}

void WriteTracer::unexempt(uint32_t tgid) const
{
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.dw_throttle_exempt), &tgid);
}

void WriteTracer::beat_throttles() const
{
    __atomic_store_n(&skel_->bss->dw_continuer_beat_ns, monotonic_ns(), __ATOMIC_RELEASE);
}

void WriteTracer::set_throttle_event_handler(std::function<void(const ThrottleEvent &)> handler)
{
    throttle_event_handler_ = std::move(handler);
}

}  // namespace diskwatch
