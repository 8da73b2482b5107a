/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every map and setting of ebpf-diskwatch, declared in one place. Types of
 * keys and values come from include/diskwatch/abi.h, shared with userspace.
 *
 * Each program file of the object includes this header; the definitions are
 * __weak so that `bpftool gen object` keeps one of each (they are identical)
 * when it links the files into the one object userspace loads.
 */
#ifndef DISKWATCH_MAPS_BPF_H
#define DISKWATCH_MAPS_BPF_H

#include "diskwatch/abi.h"

/* Load-time settings (rodata, fixed once loaded): what userspace found the
 * kernel can do, and the parts scripts/bench leaves out. */
const volatile struct dw_config dw_config __weak = {};

/* Cumulative bytes and calls per (cgroup, tgid, device). Per-CPU so the hot
 * path is one lookup and a plain add. Userspace reads it every interval and
 * deletes only the keys of processes that have exited (their counts are final). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, DW_WRITERS_MAX);
	__type(key, struct dw_writer_key);
	__type(value, struct dw_writer_counts);
} dw_writers SEC(".maps") __weak;

/* Lifecycle records (exec, exit, comm change) for userspace; never one per write. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DW_EVENTS_RINGBUF_BYTES);
} dw_events SEC(".maps") __weak;

/* What the BPF side dropped, by DW_ERR_* index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_ERR_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} dw_errors SEC(".maps") __weak;

/* Tracepoint fallback only: the fd a write syscall was entered with, by thread
 * id, until its sys_exit_* tracepoint (classic syscall exit tracepoints carry
 * only the return value). The costly path; used only when nothing better loads. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* thread id */
	__type(value, __u64); /* fd */
} dw_pending_fds SEC(".maps") __weak;

/* A file as the growth model names it. Kernel-internal, never read by userspace. */
struct dw_file_key {
	__u32 dev;
	__u32 pad;
	__u64 ino;
};

/* Growth (bpf/file_growth.bpf.h): last known i_size per file. LRU: files not written for a while are forgotten,
 * and fall back to the "unknown size" rule above. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dw_file_key);
	__type(value, __u64);
} dw_file_sizes SEC(".maps") __weak;

/* Rate alarms (bpf/rate_alarm.bpf.h): one token bucket per process and per
 * cgroup while the agent's rules have write_rate thresholds (or a throttle
 * needs the byte count). LRU: writers that stop are evicted, never an error. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DW_RATE_BUCKETS_MAX);
	__type(key, struct dw_rate_key);
	__type(value, struct dw_rate_bucket);
} dw_rate_buckets SEC(".maps") __weak;

/* Throttles held in the kernel (bpf/throttle.bpf.h), by subject: written by
 * the agent when a throttle starts and deleted when it ends; the allowance is
 * the kernel's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_THROTTLES_MAX);
	__type(key, struct dw_rate_key);
	__type(value, struct dw_throttle);
} dw_throttles SEC(".maps") __weak;

/* Every writer the kernel stopped for a throttle, by tgid, until the agent
 * continues it (and deletes the record first). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_THROTTLE_STOPPED_MAX);
	__type(key, __u32);
	__type(value, struct dw_stopped_writer);
} dw_throttle_stopped SEC(".maps") __weak;

/* Processes the kernel never stops (the agent, its guard, protected
 * processes the agent found in a throttled cgroup); by tgid. Also the
 * senders of SIGCONT that are not defiance (the agent continuing). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_THROTTLE_EXEMPT_MAX);
	__type(key, __u32);
	__type(value, __u8);
} dw_throttle_exempt SEC(".maps") __weak;

/* When the agent's continuer last ran (bpf_ktime_get_ns()), written by it at
 * every pass while it holds a throttle. The kernel stops no writer for an
 * agent silent longer than DW_THROTTLE_SILENT_NS: a hung or SIGSTOPped agent
 * could not continue it (its guard continues what is stopped; this keeps it
 * running). */
__u64 dw_continuer_beat_ns __weak = 0;

/* The agent's run-time settings for rate alarms (.bss: writable after load,
 * through the skeleton's mmap). All zero: rate alarms off. */
struct dw_rate_alarm_config dw_rate_alarm_config __weak = {};

/* "The counters userspace reads (dw_writers, dw_errors) moved since it last
 * read them." Set by the BPF side after it changes one; swapped back to 0 by
 * userspace just before it reads them (WriteTracer::take_counters_moved), so a
 * refresh that finds it 0 knows the map holds what it read last time and
 * skips walking its 32768 buckets and re-aggregating every key: what keeps
 * an idle monitor idle. Tested before it is set, so a busy CPU writes the
 * cache line once per refresh, not once per write; and on its own cache
 * line, away from the rate-alarm settings that every write reads. */
__u32 dw_counters_moved __attribute__((aligned(64))) __weak = 0;

static __always_inline void dw_note_counters_moved(void)
{
	/* After the counter change it announces: an exchange is a full barrier
	 * (x86 xchg, arm64 swpal), so a reader that sees 0 after its own swap
	 * also sees every change made before a 1 was stored. */
	if (!dw_counters_moved)
		__sync_lock_test_and_set(&dw_counters_moved, 1);
}

static __always_inline void dw_count_error(__u32 index)
{
	__u64 *counter = bpf_map_lookup_elem(&dw_errors, &index);

	if (counter)
		*counter += 1;
	dw_note_counters_moved();
}

#endif /* DISKWATCH_MAPS_BPF_H */
