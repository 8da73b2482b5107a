// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Process lifecycle (exec, exit, comm changes) for userspace, through the
 * ring buffer: never one record per write.
 */
#include "write_path.bpf.h"

/* ---- process lifecycle ----------------------------------------------------- */

/* Lifecycle records are not urgent: userspace consumes them on its refresh
 * timer (ring_buffer__consume before it reads the writer map, so an exit is
 * always seen before its keys are deleted). A wake-up per record is an
 * irq_work self-IPI, a VM exit here: ~10 us per exec, exit or rename. Wake the
 * reader only when the buffer is filling up, so it never overflows between
 * two refreshes. Read before this record is committed, so at most one record
 * late. */
static __always_inline __u64 lifecycle_wakeup_flag(void)
{
	__u32 threshold = dw_config.events_wakeup_bytes;

	if (!threshold)
		return 0;
	return bpf_ringbuf_query(&dw_events, BPF_RB_AVAIL_DATA) >= threshold ? BPF_RB_FORCE_WAKEUP
									       : BPF_RB_NO_WAKEUP;
}

/* new_comm: the name being set (task_rename fires before it is copied into
 * task->comm); NULL to take the process leader's current name. */
static __always_inline void emit_process_event(__u32 kind, struct task_struct *task,
					       const char *new_comm)
{
	struct dw_process_event *event;

	event = bpf_ringbuf_reserve(&dw_events, sizeof(*event), 0);
	if (!event) {
		dw_count_error(DW_ERR_RINGBUF_FULL);
		return;
	}
	event->kind = kind;
	event->tgid = BPF_CORE_READ(task, tgid);
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	event->uid = BPF_CORE_READ(task, cred, uid.val);
	event->ts_ns = bpf_ktime_get_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	if (new_comm)
		bpf_probe_read_kernel_str(event->comm, sizeof(event->comm), new_comm);
	else
		BPF_CORE_READ_STR_INTO(&event->comm, task, group_leader, comm);
	bpf_ringbuf_submit(event, lifecycle_wakeup_flag());
}

/* An exit record only when the whole process is gone: do_exit() decrements
 * signal->live before the sched_process_exit tracepoint fires. */
static __always_inline int on_exit(struct task_struct *task)
{
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	emit_process_event(DW_EVENT_EXIT, task, NULL);
	return 0;
}

static __always_inline int on_rename(struct task_struct *task, const char *new_comm)
{
	/* /proc/PID/comm is the leader's name: other threads' names are not
	 * the process's. */
	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0;
	emit_process_event(DW_EVENT_RENAME, task, new_comm);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(dw_exec_btf, struct task_struct *task)
{
	emit_process_event(DW_EVENT_EXEC, task, NULL);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(dw_exit_btf, struct task_struct *task)
{
	return on_exit(task);
}

SEC("tp_btf/task_rename")
int BPF_PROG(dw_rename_btf, struct task_struct *task, const char *new_comm)
{
	return on_rename(task, new_comm);
}

/* Raw tracepoint twins for kernels without tp_btf. */
SEC("raw_tp/sched_process_exec")
int dw_exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	emit_process_event(DW_EVENT_EXEC, (struct task_struct *)ctx->args[0], NULL);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int dw_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exit((struct task_struct *)ctx->args[0]);
}

SEC("raw_tp/task_rename")
int dw_rename_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_rename((struct task_struct *)ctx->args[0], (const char *)ctx->args[1]);
}
