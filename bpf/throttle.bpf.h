/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Throttles held where the bytes are counted. A throttled subject (a process,
 * or a cgroup's processes together) has an allowance that refills at its
 * throttle_to rate, banking at most burst_bytes. Each write is charged to it;
 * the write that takes it below zero has happened (the bytes are counted),
 * and the writer's own hook then sends it SIGSTOP, which is delivered as it
 * returns to user space: before its next write, whatever its speed. The agent
 * continues it when the allowance is back (userspace/actions/enforcer.cpp).
 *
 * A writer continued by anyone else (SIGCONT) is stopped again at its next
 * write, since it still owes the bytes; the signal_generate hook tells the
 * agent who sent it.
 *
 * Never while the agent's continuer is silent (hung or stopped: it could not
 * continue the writer). Never from another task's context: the stop is sent only when the task
 * that wrote is the current one, and not a kernel thread or an io_uring
 * worker (their bytes are charged; the owner is stopped at its own next
 * write). Never for a process in dw_throttle_exempt.
 *
 * Cost: nothing while no throttle exists (throttled_scopes == 0: one load of
 * a cache line every write reads anyway). With throttles, one hash lookup per
 * throttled scope per write.
 *
 * Maps: dw_throttles, dw_throttle_stopped, dw_throttle_exempt
 * (bpf/maps.bpf.h); types: include/diskwatch/abi.h; the allowance's
 * arithmetic: bpf/throttle_allowance.bpf.h.
 */
#ifndef DISKWATCH_THROTTLE_BPF_H
#define DISKWATCH_THROTTLE_BPF_H

#include "maps.bpf.h"
#include "throttle_allowance.bpf.h"

#ifndef PF_KTHREAD
#define PF_IO_WORKER 0x00000010 /* io_uring's io-wq and sqpoll threads */
#define PF_KTHREAD 0x00200000
#endif
#define DW_SIGCONT 18
#define DW_SIGSTOP 19
#define DW_THROTTLE_EVENT_GAP_NS 1000000ull
#define DW_DEFIED_EVENT_GAP_NS 100000000ull
/* Below the guard's hang timeout (2 s, userspace/agent/guard.h), so that
 * what the guard continues after a hang is not stopped again. */
#define DW_THROTTLE_SILENT_NS 1000000000ull

/* May the kernel stop the current task for a write it just made? */
static __always_inline bool dw_may_stop_current(__u32 tgid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 flags = BPF_CORE_READ(task, flags);

	if (flags & (PF_KTHREAD | PF_IO_WORKER))
		return false;
	if (tgid <= 1)
		return false;
	return !bpf_map_lookup_elem(&dw_throttle_exempt, &tgid);
}

static __always_inline void dw_emit_throttle_event(__u32 kind, __u32 tgid, const struct dw_rate_key *key, __u64 now)
{
	struct dw_throttle_event *event;

	event = bpf_ringbuf_reserve(&dw_events, sizeof(*event), 0);
	if (!event) {
		dw_count_error(DW_ERR_RINGBUF_FULL); /* the continuer polls: a lost wake-up only delays */
		return;
	}
	__builtin_memset(event, 0, sizeof(*event));
	event->kind = kind;
	event->tgid = tgid;
	event->ts_ns = now;
	event->throttle = *key;
	if (kind == DW_EVENT_THROTTLE_DEFIED) {
		event->sender_tgid = bpf_get_current_pid_tgid() >> 32;
		event->sender_uid = (__u32)bpf_get_current_uid_gid();
		bpf_get_current_comm(&event->sender_comm, sizeof(event->sender_comm));
	}
	bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
}

/* Stop the current process for `key`'s throttle: the record first (a stop
 * the agent cannot find is never sent), then the signal.
 *
 * The SIGSTOP goes to the writing thread (bpf_send_signal_thread), not to
 * the process: a stop signal stops the whole thread group whichever queue it
 * is taken from, and a thread's own SIGSTOP is taken as that thread returns
 * to user space, before its next write. A process-directed one waits in the
 * shared queue for the one thread the kernel woke to take it; until then
 * every other thread's overdrawing write finds it "already pending" and wakes
 * nobody. Seen with 16 writing threads: one thread wrote 23 MiB in 300 ms
 * past a pending SIGSTOP, a 5 s window held 2x throttle_to. */
static __always_inline void dw_stop_writer(struct dw_throttle *throttle, const struct dw_rate_key *key, __u32 tgid,
					   __u64 now)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dw_stopped_writer *existing = bpf_map_lookup_elem(&dw_throttle_stopped, &tgid);
	struct dw_stopped_writer stopped = {
		.throttle = *key,
		.stopped_ns = now,
		.start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime),
	};

	if (existing) {
		/* Stopped again before the agent continued it (someone else did):
		 * in place, keeping when its defiance was last reported. */
		existing->throttle = *key;
		existing->stopped_ns = now;
		existing->start_boottime_ns = stopped.start_boottime_ns;
	} else if (bpf_map_update_elem(&dw_throttle_stopped, &tgid, &stopped, BPF_NOEXIST) &&
		   !bpf_map_lookup_elem(&dw_throttle_stopped, &tgid)) {
		dw_count_error(DW_ERR_THROTTLE_RECORD);
		return;
	}
	if (bpf_send_signal_thread(DW_SIGSTOP)) {
		__sync_fetch_and_add(&throttle->stop_failures, 1);
		dw_count_error(DW_ERR_THROTTLE_SIGNAL);
		return;
	}
	__sync_fetch_and_add(&throttle->stops, 1);
	if (now - throttle->last_event_ns >= DW_THROTTLE_EVENT_GAP_NS) {
		throttle->last_event_ns = now;
		dw_emit_throttle_event(DW_EVENT_THROTTLE_STOP, tgid, key, now);
	}
}

/* Is the current process the one a process-scope throttle is about? A
 * process that took the throttled one's pid after it exited (its throttle
 * not yet removed) is not it: never charged, never stopped. */
static __always_inline bool dw_throttle_owns_current(const struct dw_throttle *throttle)
{
	struct task_struct *task;

	if (!throttle->owner_start_ticks || !throttle->tick_ns)
		return true; /* a cgroup's: any member */
	task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, group_leader, start_boottime) / throttle->tick_ns == throttle->owner_start_ticks;
}

/* The agent's continuer beat within the last second: a stop now will be continued. */
static __always_inline bool dw_continuer_alive(__u64 now)
{
	return now - dw_continuer_beat_ns < DW_THROTTLE_SILENT_NS;
}

/* Charge `bytes` to the subject's throttle, if it has one; stop the writer
 * when the allowance goes below zero (the arithmetic, lock-free across CPUs:
 * bpf/throttle_allowance.bpf.h). */
static __always_inline void dw_throttle_charge(__u32 scope, __u64 id, __u32 tgid, long bytes)
{
	struct dw_rate_key key = { .id = id, .scope = scope };
	struct dw_throttle *throttle;
	__u64 now;

	throttle = bpf_map_lookup_elem(&dw_throttles, &key);
	if (!throttle || !dw_throttle_owns_current(throttle))
		return;
	now = bpf_ktime_get_ns();
	if (dw_throttle_account(throttle, bytes, now) < 0 && dw_continuer_alive(now) && dw_may_stop_current(tgid))
		dw_stop_writer(throttle, &key, tgid, now);
}

/* Global (not inlined) functions: the verifier checks each once, on its own,
 * instead of once per inlined account_write() (the AIO completion loop
 * inlines 64 of them: inlined, this body took the program past the
 * verifier's million instructions). Scalars only, as global functions take.
 * Defined once, in bpf/throttle_signals.bpf.c. */
__noinline int dw_throttle_writes(__u32 tgid, __u64 cgroup_id, __s64 bytes);

/* Does the current process (or its cgroup) owe bytes to a throttle? Then
 * stop it now. For writers whose bytes are charged in another task's
 * context (io_uring completions in an io-wq worker): the owner is stopped
 * when it next submits or reaps (io_uring_enter). Nothing is charged here. */
static __always_inline void dw_throttle_stop_if_owing(__u32 scope, __u64 id, __u32 tgid)
{
	struct dw_rate_key key = { .id = id, .scope = scope };
	struct dw_throttle *throttle;
	__u64 now;

	throttle = bpf_map_lookup_elem(&dw_throttles, &key);
	if (!throttle || !dw_throttle_owns_current(throttle))
		return;
	now = bpf_ktime_get_ns();
	if (dw_allowance_now(throttle, now) < 0 && dw_continuer_alive(now) && dw_may_stop_current(tgid))
		dw_stop_writer(throttle, &key, tgid, now);
}

__noinline int dw_throttle_check_owing(__u32 tgid, __u64 cgroup_id); /* defined in throttle_signals.bpf.c */

/* At io_uring_enter's exit, in the submitting (and reaping) task. */
static __always_inline void dw_throttle_on_io_uring_enter(void)
{
	if (dw_rate_alarm_config.throttled_scopes)
		dw_throttle_check_owing(bpf_get_current_pid_tgid() >> 32, bpf_get_current_cgroup_id());
}

/* The one call from account_write(), with the writer key it built: while no
 * throttle exists, a load and a branch. */
static __always_inline void dw_throttle_on_write(const struct dw_writer_key *writer, long bytes)
{
	if (dw_rate_alarm_config.throttled_scopes)
		dw_throttle_writes(writer->tgid, writer->cgroup_id, bytes);
}

/* A SIGCONT to `tgid` that defies a throttle: the kernel holds it stopped,
 * and the sender is not exempt (the agent continuing it). Its stop record,
 * or NULL. */
static __always_inline struct dw_stopped_writer *dw_defied_stop(int sig, __u32 tgid)
{
	struct dw_stopped_writer *stopped;
	__u32 sender;

	if (sig != DW_SIGCONT || !dw_rate_alarm_config.throttled_scopes)
		return NULL;
	stopped = bpf_map_lookup_elem(&dw_throttle_stopped, &tgid);
	if (!stopped)
		return NULL;
	sender = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&dw_throttle_exempt, &sender) ? NULL : stopped;
}

/* SIGCONT to a process the kernel holds stopped for a throttle, from anyone
 * but an exempt sender (the agent): say who. The writer is stopped again at
 * its next write by dw_throttle_charge (it still owes the bytes). */
static __always_inline int dw_on_signal_generate(int sig, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct dw_stopped_writer *stopped = dw_defied_stop(sig, tgid);
	struct dw_throttle *throttle;
	__u64 now;

	if (!stopped)
		return 0;
	throttle = bpf_map_lookup_elem(&dw_throttles, &stopped->throttle);
	if (throttle)
		__sync_fetch_and_add(&throttle->defied, 1);
	now = bpf_ktime_get_ns();
	if (now - stopped->last_defied_ns < DW_DEFIED_EVENT_GAP_NS)
		return 0; /* counted above; the agent hears of it at most every 100 ms */
	stopped->last_defied_ns = now;
	dw_emit_throttle_event(DW_EVENT_THROTTLE_DEFIED, tgid, &stopped->throttle, now);
	return 0;
}

/* Kernels with bpf_send_signal_task (6.13+: 6280cf718db0 "bpf: Implement
 * bpf_send_signal_task() kfunc"): the SIGCONT is undone at once.
 * The sender's context holds the target's siglock here, so the kfunc defers
 * the SIGSTOP to irq_work: it is pending as the woken writer returns to user
 * space, and the writer mostly gets no write for its SIGCONT. Weak, and
 * called only when userspace found it in the kernel's BTF (the caller checks
 * dw_config.sigcont_restop, a load-time constant: elsewhere the call is dead
 * code). Without it each SIGCONT lets one (charged) write through before the
 * writer's own hook stops it again. */
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type, __u64 value) __ksym __weak;

static __always_inline int dw_restop_defied(int sig, struct task_struct *task)
{
	struct dw_stopped_writer *stopped = dw_defied_stop(sig, task->tgid);
	struct dw_throttle *throttle;
	__u64 now;

	if (!stopped)
		return 0;
	throttle = bpf_map_lookup_elem(&dw_throttles, &stopped->throttle);
	if (!throttle)
		return 0;
	now = bpf_ktime_get_ns();
	if (!dw_continuer_alive(now))
		return 0;
	if (dw_allowance_now(throttle, now) >= 0)
		return 0; /* paid up: the agent continues it anyway */
	if (bpf_send_signal_task(task, DW_SIGSTOP, PIDTYPE_TGID, 0))
		dw_count_error(DW_ERR_THROTTLE_SIGNAL);
	return 0;
}

#endif /* DISKWATCH_THROTTLE_BPF_H */
