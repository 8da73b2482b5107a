// Pins the layout of every struct in include/diskwatch/abi.h: the BPF side is
// compiled by clang for -target bpf, this side by the host compiler, and the
// two must agree byte for byte (tetragon's alignchecker does the same for Go).
#include <cstddef>

#include "diskwatch/abi.h"

static_assert(sizeof(dw_writer_key) == 16);
static_assert(offsetof(dw_writer_key, cgroup_id) == 0);
static_assert(offsetof(dw_writer_key, tgid) == 8);
static_assert(offsetof(dw_writer_key, dev) == 12);

static_assert(sizeof(dw_writer_counts) == 32);
static_assert(offsetof(dw_writer_counts, write_bytes) == 0);
static_assert(offsetof(dw_writer_counts, write_calls) == 8);
static_assert(offsetof(dw_writer_counts, growth_bytes) == 16);
static_assert(offsetof(dw_writer_counts, last_ino) == 24);

static_assert(sizeof(dw_process_event) == 48);
static_assert(offsetof(dw_process_event, kind) == 0);
static_assert(offsetof(dw_process_event, tgid) == 4);
static_assert(offsetof(dw_process_event, ppid) == 8);
static_assert(offsetof(dw_process_event, uid) == 12);
static_assert(offsetof(dw_process_event, ts_ns) == 16);
static_assert(offsetof(dw_process_event, cgroup_id) == 24);
static_assert(offsetof(dw_process_event, comm) == 32);

static_assert(sizeof(dw_config) == 8);
static_assert((DW_EVENTS_RINGBUF_BYTES & (DW_EVENTS_RINGBUF_BYTES - 1)) == 0, "ring buffer size: power of two");
