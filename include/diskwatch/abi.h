/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one ABI shared by the BPF programs (bpf/) and the C++ agent (userspace/).
 *
 * Rules for this file:
 *  - fixed-width __u8/__u32/__u64 only, explicit padding, no bitfields, no
 *    enums as struct members (their size is the compiler's choice);
 *  - every struct that crosses the kernel/user boundary has its size and
 *    member offsets pinned by static_asserts in userspace/kernel/abi_checks.cpp,
 *    so a change here that breaks the layout fails the C++ build, not a user;
 *  - names are in the problem's words: a "writer" is the (process, cgroup,
 *    device) that bytes are attributed to.
 */
#ifndef DISKWATCH_ABI_H
#define DISKWATCH_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DW_COMM_LEN 16
/* Distinct (tgid, cgroup, device) keys the kernel can hold between two drains.
 * Userspace deletes the keys of exited processes every interval, so this bounds
 * the number of *live* writers, not the number ever seen. */
#define DW_WRITERS_MAX 32768
/* Ring buffer for lifecycle (and, later, alert) records; a power of two. */
#define DW_EVENTS_RINGBUF_BYTES (1u << 20)

/* Key of the in-kernel write counters: who wrote, from which cgroup, to where. */
struct dw_writer_key {
	__u64 cgroup_id; /* cgroup v2 id (kernfs inode number of the cgroup directory) */
	__u32 tgid;      /* the process (thread group); threads roll up here */
	__u32 dev;       /* kernel dev_t (major << 20 | minor): the superblock's s_dev for
			    regular files, the device's i_rdev for block devices */
};

/* Counters per writer key, one copy per CPU (BPF_MAP_TYPE_PERCPU_HASH): the
 * hot path adds in place without atomics, userspace sums the CPUs. The counters
 * are cumulative; userspace computes deltas, so no increment is lost to a race
 * between a drain and a write. */
struct dw_writer_counts {
	__u64 write_bytes;  /* bytes the write syscalls reported written (return value) */
	__u64 write_calls;  /* successful write calls that landed in a file or block device */
	__u64 growth_bytes; /* bytes by which the files written grew (i_size increase), from
			      writes, fallocate and ftruncate; see docs/attribution.md */
	__u64 last_ino;     /* inode number of the last regular file this key wrote (0: none
			      yet, or a block device): userspace names it lazily, off the hot path */
	__u64 nospace_failures; /* write-path calls that failed with ENOSPC or EDQUOT: the writer
				  kept trying on a full disk or over its quota (issue #20); counted
				  only where the hook sees the result, see docs/attribution.md */
};

/* Kinds of records on the events ring buffer. */
#define DW_EVENT_EXEC 1u   /* a process exec'd: new comm */
#define DW_EVENT_EXIT 2u   /* the last thread of a process exited */
#define DW_EVENT_RENAME 3u /* the process (its leader thread) changed comm */
#define DW_EVENT_RATE_ALARM 4u /* a writer crossed a rule's rate: struct dw_rate_alarm_event */
#define DW_EVENT_THROTTLE_STOP 5u   /* the kernel stopped a throttled writer: struct dw_throttle_event */
#define DW_EVENT_THROTTLE_DEFIED 6u /* someone else sent SIGCONT to a writer the kernel stopped:
				       struct dw_throttle_event */

/* Lifecycle record: lets userspace keep the name of a process that wrote and
 * exited between two refreshes. */
struct dw_process_event {
	__u32 kind; /* DW_EVENT_* */
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u64 cgroup_id;
	char comm[DW_COMM_LEN];
};

/* ---- rate alarms: the detection fast path (bpf/rate_alarm.bpf.h) ---------
 * For the write_rate thresholds of the active rules, the kernel keeps a token
 * bucket per process (tgid) and per cgroup, and pushes a dw_rate_alarm_event
 * on the events ring buffer the moment a bucket runs dry, so the agent
 * evaluates its rules at once instead of at its next poll. The agent confirms
 * the rule's `for:` window from its own aggregates. */
#define DW_ALARM_SCOPE_PROCESS 0u /* key: the tgid */
#define DW_ALARM_SCOPE_CGROUP 1u  /* key: the cgroup v2 id */
#define DW_ALARM_SCOPES 2u
/* Distinct processes + cgroups tracked at once (LRU: the idle are evicted). */
#define DW_RATE_BUCKETS_MAX 16384

struct dw_rate_key {
	__u64 id;    /* tgid (process scope) or cgroup id (cgroup scope) */
	__u32 scope; /* DW_ALARM_SCOPE_* */
	__u32 pad;
};

/* One token bucket. Shared by all CPUs (a plain hash value, not per-CPU): a
 * rate is about the whole process. Updates race between CPUs; the error is a
 * few writes' worth of tokens, and total_bytes is added atomically. */
struct dw_rate_bucket {
	__u64 last_ns;       /* bpf_ktime_get_ns() of the last refill */
	__s64 tokens;        /* bytes that may still be written before the alarm */
	__u64 total_bytes;   /* bytes written since the key was first seen (in the alarm record) */
	__u64 last_alarm_ns; /* alarms repeat at most every repeat_ns per key */
};

/* Settings the agent changes at run time (a .bss global, written through the
 * skeleton's mmap; rodata could not change on SIGHUP). enabled_scopes == 0
 * keeps the hot path to one load and a branch. */
struct dw_rate_alarm_config {
	__u64 threshold_bps[DW_ALARM_SCOPES]; /* refill rate per scope; 0: count bytes, never alarm */
	__u64 burst_ms;       /* bucket capacity, in milliseconds of threshold */
	__u64 repeat_ns;      /* minimum gap between two alarms of one key */
	__u32 enabled_scopes; /* bit (1 << DW_ALARM_SCOPE_*) */
	/* Bit (1 << DW_ALARM_SCOPE_*): some throttle of that scope is in
	 * dw_throttles (bpf/throttle.bpf.h). 0 keeps the write path to this load
	 * and a branch, on the cache line it reads anyway. */
	__u32 throttled_scopes;
};

struct dw_rate_alarm_event {
	__u32 kind;  /* DW_EVENT_RATE_ALARM: same first field as dw_process_event */
	__u32 scope; /* DW_ALARM_SCOPE_* */
	__u32 tgid;  /* the writer whose write ran the bucket dry */
	__u32 pad;
	__u64 ts_ns;
	__u64 cgroup_id;
	__u64 id;          /* the bucket's key id (tgid or cgroup id) */
	__u64 total_bytes; /* the bucket's total_bytes */
};

/* ---- throttles held in the kernel (bpf/throttle.bpf.h) ----------------------
 * A throttled subject (a process, or a cgroup's processes together) has an
 * allowance that refills at throttle_to. The write that takes it below zero
 * is counted, and the writer's own hook then stops the writer (SIGSTOP, by
 * bpf_send_signal: delivered as it returns to user space, before its next
 * write) and records it in dw_throttle_stopped; the agent continues it when
 * the allowance is back. Never from another task's context (kernel threads,
 * io_uring workers), never a process in dw_throttle_exempt. */
#define DW_THROTTLES_MAX 1024
#define DW_THROTTLE_STOPPED_MAX 8192
#define DW_THROTTLE_EXEMPT_MAX 4096

/* Key: struct dw_rate_key (the tgid or the cgroup id, and the scope). */
struct dw_throttle {
	__u64 rate_bps;    /* throttle_to; the agent's, never changed by the kernel */
	__s64 burst_bytes; /* the most allowance that can be banked (the agent's) */
	__s64 allowance;   /* bytes that may still be written; < 0: the writer owes them */
	__u64 last_ns;     /* bpf_ktime_get_ns() up to which the allowance was refilled */
	__u64 stops;       /* SIGSTOPs sent */
	__u64 stop_failures; /* the SIGSTOP was refused (the writer was not stopped) */
	__u64 charged_bytes; /* bytes charged since the throttle started */
	__u64 last_event_ns; /* the last stop record sent to the agent (at most one per ms) */
	/* Process scope: who the throttled process is, its start in clock ticks
	 * after boot (as /proc/PID/stat says; tick_ns per tick). A later process
	 * on the same pid differs and is never charged nor stopped. 0: any (the
	 * cgroup scope). */
	__u64 owner_start_ticks;
	__u64 tick_ns;
	__u64 defied; /* SIGCONTs from others to a writer it held stopped */
};

/* Value of dw_throttle_stopped, keyed by the tgid the kernel stopped. The
 * record is written before the signal is sent: a writer the kernel stopped is
 * always one the agent can find and continue. */
struct dw_stopped_writer {
	struct dw_rate_key throttle; /* whose allowance it ran out of */
	__u64 stopped_ns;            /* bpf_ktime_get_ns() */
	__u64 start_boottime_ns;     /* the process's start (task->start_boottime): with the
					tgid, who it is; a later process on the same pid differs */
	__u64 last_defied_ns;        /* the last DW_EVENT_THROTTLE_DEFIED record for it (at most
					one per 100 ms: a SIGCONT loop must not flood the agent) */
};

/* DW_EVENT_THROTTLE_STOP: tgid was stopped (a wake-up for the agent's
 * continuer; dw_throttle_stopped is the record). DW_EVENT_THROTTLE_DEFIED:
 * sender_tgid (uid sender_uid) sent SIGCONT to tgid while the kernel held it
 * stopped for a throttle (tracepoint signal_generate). */
struct dw_throttle_event {
	__u32 kind; /* DW_EVENT_THROTTLE_*: same first field as dw_process_event */
	__u32 tgid;
	__u32 sender_tgid; /* DEFIED: who sent SIGCONT; STOP: 0 */
	__u32 sender_uid;
	__u64 ts_ns;
	struct dw_rate_key throttle;
	char sender_comm[DW_COMM_LEN];
};

/* Indexes of the per-CPU error counters (map dw_errors): everything the BPF
 * side drops or cannot do is counted here, never silently lost. */
#define DW_ERR_WRITERS_MAP_FULL 0u /* a new writer key did not fit in dw_writers */
#define DW_ERR_RINGBUF_FULL 1u     /* a lifecycle record was dropped: ring buffer full */
#define DW_ERR_FILE_LOOKUP 2u      /* fd -> struct file lookup failed after a write */
#define DW_ERR_PAIRING_MAP_FULL 3u /* tracepoint fallback: enter record did not fit */
#define DW_ERR_AIO_EVENTS_SKIPPED 4u /* io_getevents reaped more completions than one
				       program run reads (DW_AIO_EVENTS_MAX): the rest uncounted */
#define DW_ERR_AIO_EVENT_READ 5u    /* an AIO completion or its iocb could not be read */
#define DW_ERR_RATE_BUCKET 6u       /* a rate-alarm bucket could not be created: those bytes
				       missed the alarm */
#define DW_ERR_THROTTLE_RECORD 7u   /* a writer over its allowance was not stopped: its stop
				       could not be recorded (dw_throttle_stopped full) */
#define DW_ERR_THROTTLE_SIGNAL 8u   /* bpf_send_signal(SIGSTOP) failed */
#define DW_ERR_COUNT 9u

/* Completions of one io_getevents call that the BPF side reads. */
#define DW_AIO_EVENTS_MAX 64

/* Settings fixed before load (the BPF side's `const volatile` rodata). */
struct dw_config {
	/* Lifecycle records wake the reader only once this many bytes wait in the
	 * events ring buffer (0: every record wakes it). Userspace consumes them on
	 * its refresh timer; a wake-up per record costs ~10 us here (an IPI). */
	__u32 events_wakeup_bytes;
	/* 1: the kernel has the bpf_rdonly_cast kfunc (6.2+), and the tp_btf
	 * write hook reads struct file with direct loads instead of probe reads. */
	__u32 typed_file_reads;
	/* 1: the kernel has the bpf_send_signal_task kfunc (6.13+), and a
	 * SIGCONT to a throttled writer is undone at once (bpf/throttle.bpf.h). */
	__u32 sigcont_restop;
	/* scripts/bench only: DW_PART_* bits of the write path left out, to
	 * measure what each part costs (DISKWATCH_BENCH_PARTS_OFF,
	 * userspace/kernel/bench_parts.h). 0 in every real run; a load-time
	 * constant, so the verifier drops the tests as dead code. */
	__u32 parts_off;
};

/* Parts of the write path the bench can leave out (dw_config.parts_off). */
#define DW_PART_DEVICE (1u << 0)      /* fd -> file -> inode: device, inode, size (bytes go to device 0:1) */
#define DW_PART_GROWTH (1u << 1)      /* the known-size map (dw_file_sizes): growth is 0 */
#define DW_PART_RATE_ALARM (1u << 2)  /* the rate-alarm buckets */
#define DW_PART_WRITERS (1u << 3)     /* the per-writer counters (dw_writers): nothing is counted */
#define DW_PART_DIRTY_FOLIO (1u << 4) /* the page-dirtying hook's body (its dispatch remains) */
#define DW_PART_DIRTY_FOLIO_HOOK (1u << 5) /* the page-dirtying hook not attached at all (userspace) */

#endif /* DISKWATCH_ABI_H */
