/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every map of ebpf-diskwatch, declared in one place. Types of keys and values
 * come from include/diskwatch/abi.h, shared with userspace.
 */
#ifndef DISKWATCH_MAPS_BPF_H
#define DISKWATCH_MAPS_BPF_H

#include "diskwatch/abi.h"

/* Cumulative bytes and calls per (cgroup, tgid, device). Per-CPU so the hot
 * path is one lookup and a plain add. Userspace reads it every interval and
 * deletes only the keys of processes that have exited (their counts are final). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, DW_WRITERS_MAX);
	__type(key, struct dw_writer_key);
	__type(value, struct dw_writer_counts);
} dw_writers SEC(".maps");

/* Lifecycle records (exec, exit, comm change) for userspace; never one per write. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DW_EVENTS_RINGBUF_BYTES);
} dw_events SEC(".maps");

/* What the BPF side dropped, by DW_ERR_* index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_ERR_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} dw_errors SEC(".maps");

/* Tracepoint fallback only: the fd a write syscall was entered with, by thread
 * id, until its sys_exit_* tracepoint (classic syscall exit tracepoints carry
 * only the return value). The costly path; used only when nothing better loads. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* thread id */
	__type(value, __u64); /* fd */
} dw_pending_fds SEC(".maps");

/* Rate alarms (bpf/rate_alarm.bpf.h): one token bucket per process and per
 * cgroup while the agent's rules have write_rate thresholds (or a throttle
 * needs the byte count). LRU: writers that stop are evicted, never an error. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DW_RATE_BUCKETS_MAX);
	__type(key, struct dw_rate_key);
	__type(value, struct dw_rate_bucket);
} dw_rate_buckets SEC(".maps");

/* Throttles held in the kernel (bpf/throttle.bpf.h), by subject: written by
 * the agent when a throttle starts and deleted when it ends; the allowance is
 * the kernel's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_THROTTLES_MAX);
	__type(key, struct dw_rate_key);
	__type(value, struct dw_throttle);
} dw_throttles SEC(".maps");

/* Every writer the kernel stopped for a throttle, by tgid, until the agent
 * continues it (and deletes the record first). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_THROTTLE_STOPPED_MAX);
	__type(key, __u32);
	__type(value, struct dw_stopped_writer);
} dw_throttle_stopped SEC(".maps");

/* Processes the kernel never stops (the agent, its guard, protected
 * processes the agent found in a throttled cgroup); by tgid. Also the
 * senders of SIGCONT that are not defiance (the agent continuing). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_THROTTLE_EXEMPT_MAX);
	__type(key, __u32);
	__type(value, __u8);
} dw_throttle_exempt SEC(".maps");

/* When the agent's continuer last ran (bpf_ktime_get_ns()), written by it at
 * every pass while it holds a throttle. The kernel stops no writer for an
 * agent silent longer than DW_THROTTLE_SILENT_NS: a hung or SIGSTOPped agent
 * could not continue it (its guard continues what is stopped; this keeps it
 * running). */
__u64 dw_continuer_beat_ns = 0;

/* The agent's run-time settings for rate alarms (.bss: writable after load,
 * through the skeleton's mmap). All zero: rate alarms off. */
struct dw_rate_alarm_config dw_rate_alarm_config = {};

/* "The counters userspace reads (dw_writers, dw_errors) moved since it last
 * read them." Set by the BPF side after it changes one; swapped back to 0 by
 * userspace just before it reads them (WriteTracer::take_counters_moved), so a
 * refresh that finds it 0 knows the map holds what it read last time and
 * skips walking its 32768 buckets and re-aggregating every key: what keeps
 * an idle monitor idle. Tested before it is set, so a busy CPU writes the
 * cache line once per refresh, not once per write; and on its own cache
 * line, away from the rate-alarm settings that every write reads. */
__u32 dw_counters_moved __attribute__((aligned(64))) = 0;

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
