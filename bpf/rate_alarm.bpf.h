/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The detection fast path: token buckets per process and per cgroup, refilled
 * at the lowest write_rate threshold of the agent's active rules (per scope).
 * When a write runs a bucket dry, a dw_rate_alarm_event goes on the events
 * ring buffer at once (at most one per key per repeat_ns), so the agent
 * evaluates its rules within milliseconds instead of at its next poll.
 *
 * Cost: with no rule active (enabled_scopes == 0) one load and a branch per
 * write. With rules, one LRU hash lookup and a few arithmetic operations per
 * enabled scope; a record only when a bucket runs dry.
 *
 * Maps and settings: dw_rate_buckets, dw_rate_alarm_config (bpf/maps.bpf.h);
 * types: include/diskwatch/abi.h.
 */
#ifndef DISKWATCH_RATE_ALARM_BPF_H
#define DISKWATCH_RATE_ALARM_BPF_H

#include "maps.bpf.h"

#define DW_USEC_PER_SEC 1000000ull
#define DW_MAX_REFILL_US DW_USEC_PER_SEC /* a bucket idle longer than 1 s is full */

static __always_inline void dw_emit_rate_alarm(__u32 scope, const struct dw_writer_key *writer,
					       const struct dw_rate_key *key, __u64 total_bytes, __u64 now)
{
	struct dw_rate_alarm_event *event;

	event = bpf_ringbuf_reserve(&dw_events, sizeof(*event), 0);
	if (!event) {
		dw_count_error(DW_ERR_RINGBUF_FULL);
		return;
	}
	event->kind = DW_EVENT_RATE_ALARM;
	event->scope = scope;
	event->tgid = writer->tgid;
	event->pad = 0;
	event->ts_ns = now;
	event->cgroup_id = writer->cgroup_id;
	event->id = key->id;
	event->total_bytes = total_bytes;
	/* Always wake the agent: lifecycle records waiting unconsumed (submitted
	 * without a wake-up) would otherwise make the ring buffer's adaptive
	 * wake-up skip this one too. Rare by design: one per key per repeat_ns. */
	bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
}

static __always_inline void dw_rate_bucket_add(__u32 scope, __u64 id, const struct dw_writer_key *writer, long bytes,
					       __u64 now)
{
	struct dw_rate_key key = { .id = id, .scope = scope };
	__u64 threshold = dw_rate_alarm_config.threshold_bps[scope & 1];
	__u64 capacity = threshold * dw_rate_alarm_config.burst_ms / 1000;
	struct dw_rate_bucket *bucket;
	__u64 elapsed_us;
	__s64 tokens;

	bucket = bpf_map_lookup_elem(&dw_rate_buckets, &key);
	if (!bucket) {
		struct dw_rate_bucket fresh = { .last_ns = now, .tokens = (__s64)capacity };

		/* LRU: an insert evicts the least recently used key, never fails for room. */
		bpf_map_update_elem(&dw_rate_buckets, &key, &fresh, BPF_NOEXIST);
		bucket = bpf_map_lookup_elem(&dw_rate_buckets, &key);
		if (!bucket) {
			dw_count_error(DW_ERR_RATE_BUCKET); /* rare (no memory), but never silent */
			return;
		}
	}
	__sync_fetch_and_add(&bucket->total_bytes, bytes);
	if (!threshold)
		return; /* counting only */

	/* Another CPU may have refilled it with a later clock reading than ours
	 * (both read the clock, then the bucket): no refill then. Unguarded, the
	 * unsigned difference wrapped to a full bucket and the alarm was missed
	 * (tests/integration/test_kernel_logic.cpp). The charge itself is a
	 * plain read-modify-write: racing writers may lose one another's bytes
	 * here (never in dw_writers); the agent's own evaluation is exact. */
	elapsed_us = now > bucket->last_ns ? (now - bucket->last_ns) / 1000 : 0;
	/* Idle for a second (longer than any burst the agent sets): full,
	 * whatever it owed. A capped refill left one huge write's debt to alarm
	 * an hour later; an uncapped product could wrap. */
	if (elapsed_us > DW_MAX_REFILL_US)
		tokens = (__s64)capacity;
	else
		tokens = bucket->tokens + (__s64)(elapsed_us * threshold / DW_USEC_PER_SEC);
	if (tokens > (__s64)capacity)
		tokens = (__s64)capacity;
	tokens -= bytes;
	if (now > bucket->last_ns)
		bucket->last_ns = now;
	bucket->tokens = tokens;
	if (tokens < 0 && now - bucket->last_alarm_ns >= dw_rate_alarm_config.repeat_ns) {
		bucket->last_alarm_ns = now;
		dw_emit_rate_alarm(scope, writer, &key, bucket->total_bytes, now);
	}
}

/* The one call from account_write(): the writer key is already built. One
 * clock read for both scopes (a helper call saved per write). */
static __always_inline void dw_rate_alarm_on_write(const struct dw_writer_key *writer, long bytes)
{
	__u32 scopes = dw_rate_alarm_config.enabled_scopes;
	__u64 now;

	if (!scopes)
		return;
	now = bpf_ktime_get_ns();
	if (scopes & (1u << DW_ALARM_SCOPE_PROCESS))
		dw_rate_bucket_add(DW_ALARM_SCOPE_PROCESS, writer->tgid, writer, bytes, now);
	if (scopes & (1u << DW_ALARM_SCOPE_CGROUP))
		dw_rate_bucket_add(DW_ALARM_SCOPE_CGROUP, writer->cgroup_id, writer, bytes, now);
}

#endif /* DISKWATCH_RATE_ALARM_BPF_H */
