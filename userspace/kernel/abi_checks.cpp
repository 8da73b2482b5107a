// Pins the layout of every struct in include/diskwatch/abi.h: the BPF side is
// compiled by clang for -target bpf, this side by the host compiler, and the
// two must agree byte for byte (tetragon's alignchecker does the same for Go).
#include <cstddef>

#include "diskwatch/abi.h"

static_assert(sizeof(dw_writer_key) == 16);
static_assert(offsetof(dw_writer_key, cgroup_id) == 0);
static_assert(offsetof(dw_writer_key, tgid) == 8);
static_assert(offsetof(dw_writer_key, dev) == 12);

static_assert(sizeof(dw_writer_counts) == 40);
static_assert(offsetof(dw_writer_counts, write_bytes) == 0);
static_assert(offsetof(dw_writer_counts, write_calls) == 8);
static_assert(offsetof(dw_writer_counts, growth_bytes) == 16);
static_assert(offsetof(dw_writer_counts, last_ino) == 24);
static_assert(offsetof(dw_writer_counts, nospace_failures) == 32);

static_assert(sizeof(dw_process_event) == 48);
static_assert(offsetof(dw_process_event, kind) == 0);
static_assert(offsetof(dw_process_event, tgid) == 4);
static_assert(offsetof(dw_process_event, ppid) == 8);
static_assert(offsetof(dw_process_event, uid) == 12);
static_assert(offsetof(dw_process_event, ts_ns) == 16);
static_assert(offsetof(dw_process_event, cgroup_id) == 24);
static_assert(offsetof(dw_process_event, comm) == 32);

static_assert(sizeof(dw_config) == 16);
static_assert(offsetof(dw_config, events_wakeup_bytes) == 0);
static_assert(offsetof(dw_config, typed_file_reads) == 4);
static_assert(offsetof(dw_config, sigcont_restop) == 8);
static_assert(offsetof(dw_config, parts_off) == 12);

static_assert(sizeof(dw_rate_key) == 16);
static_assert(offsetof(dw_rate_key, id) == 0);
static_assert(offsetof(dw_rate_key, scope) == 8);

static_assert(sizeof(dw_rate_bucket) == 32);
static_assert(offsetof(dw_rate_bucket, last_ns) == 0);
static_assert(offsetof(dw_rate_bucket, tokens) == 8);
static_assert(offsetof(dw_rate_bucket, total_bytes) == 16);
static_assert(offsetof(dw_rate_bucket, last_alarm_ns) == 24);

static_assert(sizeof(dw_rate_alarm_config) == 40);
static_assert(offsetof(dw_rate_alarm_config, threshold_bps) == 0);
static_assert(offsetof(dw_rate_alarm_config, burst_ms) == 16);
static_assert(offsetof(dw_rate_alarm_config, repeat_ns) == 24);
static_assert(offsetof(dw_rate_alarm_config, enabled_scopes) == 32);
static_assert(offsetof(dw_rate_alarm_config, throttled_scopes) == 36);

static_assert(sizeof(dw_throttle) == 88);
static_assert(offsetof(dw_throttle, rate_bps) == 0);
static_assert(offsetof(dw_throttle, burst_bytes) == 8);
static_assert(offsetof(dw_throttle, allowance) == 16);
static_assert(offsetof(dw_throttle, last_ns) == 24);
static_assert(offsetof(dw_throttle, stops) == 32);
static_assert(offsetof(dw_throttle, stop_failures) == 40);
static_assert(offsetof(dw_throttle, charged_bytes) == 48);
static_assert(offsetof(dw_throttle, last_event_ns) == 56);
static_assert(offsetof(dw_throttle, owner_start_ticks) == 64);
static_assert(offsetof(dw_throttle, tick_ns) == 72);
static_assert(offsetof(dw_throttle, defied) == 80);

static_assert(sizeof(dw_stopped_writer) == 40);
static_assert(offsetof(dw_stopped_writer, throttle) == 0);
static_assert(offsetof(dw_stopped_writer, stopped_ns) == 16);
static_assert(offsetof(dw_stopped_writer, start_boottime_ns) == 24);
static_assert(offsetof(dw_stopped_writer, last_defied_ns) == 32);

static_assert(sizeof(dw_throttle_event) == 56);
static_assert(offsetof(dw_throttle_event, kind) == offsetof(dw_process_event, kind), "records are told apart by kind");
static_assert(offsetof(dw_throttle_event, tgid) == 4);
static_assert(offsetof(dw_throttle_event, sender_tgid) == 8);
static_assert(offsetof(dw_throttle_event, sender_uid) == 12);
static_assert(offsetof(dw_throttle_event, ts_ns) == 16);
static_assert(offsetof(dw_throttle_event, throttle) == 24);
static_assert(offsetof(dw_throttle_event, sender_comm) == 40);

static_assert(sizeof(dw_rate_alarm_event) == 48);
static_assert(offsetof(dw_rate_alarm_event, kind) == offsetof(dw_process_event, kind), "records are told apart by kind");
static_assert(offsetof(dw_rate_alarm_event, scope) == 4);
static_assert(offsetof(dw_rate_alarm_event, tgid) == 8);
static_assert(offsetof(dw_rate_alarm_event, ts_ns) == 16);
static_assert(offsetof(dw_rate_alarm_event, cgroup_id) == 24);
static_assert(offsetof(dw_rate_alarm_event, id) == 32);
static_assert(offsetof(dw_rate_alarm_event, total_bytes) == 40);
static_assert((DW_EVENTS_RINGBUF_BYTES & (DW_EVENTS_RINGBUF_BYTES - 1)) == 0, "ring buffer size: power of two");
