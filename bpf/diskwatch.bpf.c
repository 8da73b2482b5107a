// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel side of ebpf-diskwatch: attribute every byte written to a regular
 * file or a block device to (process, cgroup v2, device), counted in place in
 * a per-CPU map, and report process lifecycle through a ring buffer.
 *
 * The same object carries one family of write hooks per kernel capability;
 * userspace probes the running kernel and keeps exactly one family loaded
 * (bpf_program__set_autoload), cheapest first:
 *
 *   fentry      fexit/vfs_{write,writev,iter_write} typed struct file, no fd lookup
 *   tp_btf      tp_btf/sys_exit                     typed pt_regs; fd -> file
 *   raw_tp      raw_tp/sys_exit                     untyped: every read is a probe read
 *   tracepoint  syscalls/sys_{enter,exit}_*         needs tracefs; fd paired via a map
 *
 * Only the return value is counted (bytes actually written), never the
 * requested size. The syscall paths read the fd from the saved user pt_regs
 * at sys_exit: they still hold the arguments, so no enter/exit pairing map is
 * needed (pairing costs ~+950 ns per write on these machines; see
 * ../shared/KERNEL-NOTES.md).
 *
 * Syscall numbers and argument registers are x86-64's (the checked-in
 * vmlinux.h is x86-64 too).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"
#include "rate_alarm.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct dw_config dw_config = {};

#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFBLK 0060000

/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_write 1
#define NR_pwrite64 18
#define NR_writev 20
#define NR_sendfile 40
#define NR_splice 275
#define NR_pwritev 296
#define NR_copy_file_range 326
#define NR_pwritev2 328

#define EEXIST 17

/* Which syscall argument holds the fd the bytes land in, or -1 when the
 * syscall is not a write path. sendfile's out_fd is its first argument;
 * splice and copy_file_range take the destination third. */
static __always_inline int destination_fd_argument(long syscall_nr)
{
	switch (syscall_nr) {
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
	case NR_sendfile:
		return 0;
	case NR_splice:
	case NR_copy_file_range:
		return 2;
	default:
		return -1;
	}
}

/* Add one successful write to its writer key: one lookup, an in-place add. */
static __always_inline void account_write(__u32 dev, long bytes)
{
	struct dw_writer_key key = {
		.cgroup_id = bpf_get_current_cgroup_id(),
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.dev = dev,
	};
	struct dw_writer_counts *counts;

	dw_rate_alarm_on_write(&key, bytes);
	counts = bpf_map_lookup_elem(&dw_writers, &key);
	if (!counts) {
		struct dw_writer_counts fresh = { .write_bytes = bytes, .write_calls = 1 };
		long err = bpf_map_update_elem(&dw_writers, &key, &fresh, BPF_NOEXIST);

		if (!err)
			return;
		if (err != -EEXIST) {
			dw_count_error(DW_ERR_WRITERS_MAP_FULL);
			return;
		}
		/* Another CPU cannot race us on a per-CPU value, but a nested
		 * program (NMI, softirq write) can have created it. */
		counts = bpf_map_lookup_elem(&dw_writers, &key);
		if (!counts)
			return;
	}
	counts->write_bytes += bytes;
	counts->write_calls += 1;
}

/* The device a file's bytes land on, or 0 for anything that is not a regular
 * file or a block device (pipes, sockets, ttys, character devices). 0:0 is
 * never a real superblock: anonymous device minors start at 1. */
static __always_inline __u32 destination_dev_typed(struct file *file)
{
	struct inode *inode = file->f_inode;
	umode_t mode = inode->i_mode;

	if ((mode & S_IFMT) == S_IFREG)
		return inode->i_sb->s_dev;
	if ((mode & S_IFMT) == S_IFBLK)
		return inode->i_rdev;
	return 0;
}

static __always_inline __u32 destination_dev_probed(struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	umode_t mode = BPF_CORE_READ(inode, i_mode);

	if ((mode & S_IFMT) == S_IFREG)
		return BPF_CORE_READ(inode, i_sb, s_dev);
	if ((mode & S_IFMT) == S_IFBLK)
		return BPF_CORE_READ(inode, i_rdev);
	return 0;
}

/* current->files->fdt->fd[fd]; the array element itself needs a probe read
 * because its index is a runtime value. */
static __always_inline struct file *file_of_fd(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline long syscall_argument(struct pt_regs *regs, int index)
{
	return index == 0 ? BPF_CORE_READ(regs, di) : BPF_CORE_READ(regs, dx);
}

static __always_inline void account_fd_write(long fd, long ret)
{
	struct file *file = file_of_fd((struct task_struct *)bpf_get_current_task(), fd);
	__u32 dev;

	if (!file) {
		dw_count_error(DW_ERR_FILE_LOOKUP);
		return;
	}
	dev = destination_dev_probed(file);
	if (dev)
		account_write(dev, ret);
}

/* ---- family 1: fentry (fexit on the VFS write entry points) ---------------- */

SEC("fexit/vfs_write")
int BPF_PROG(dw_vfs_write_exit, struct file *file, const char *buf, size_t count, loff_t *pos,
	     ssize_t ret)
{
	__u32 dev;

	if (ret <= 0)
		return 0;
	dev = destination_dev_typed(file);
	if (dev)
		account_write(dev, ret);
	return 0;
}

SEC("fexit/vfs_writev")
int BPF_PROG(dw_vfs_writev_exit, struct file *file, const struct iovec *vec, unsigned long vlen,
	     loff_t *pos, rwf_t flags, ssize_t ret)
{
	__u32 dev;

	if (ret <= 0)
		return 0;
	dev = destination_dev_typed(file);
	if (dev)
		account_write(dev, ret);
	return 0;
}

/* sendfile, splice and copy_file_range never pass through vfs_write or
 * vfs_writev: the kernel moves their bytes through a pipe and writes them
 * with iter_file_splice_write -> vfs_iter_write (fs/splice.c, v6.1 through
 * v6.18; the vmtest caught fentry missing all three on 6.1). Other callers of
 * vfs_iter_write must not count: overlayfs hands a write() already counted at
 * vfs_write on to its upper file this way, and the loop driver, nfsd and
 * target_core_file write through it from kernel threads. So count it only
 * inside those three syscalls, told by the syscall number in the task's saved
 * user registers (bpf_task_pt_regs: v5.15; a kernel
 * thread's saved registers are zeroed, so orig_ax is 0 there). */
static __always_inline bool in_splice_write_syscall(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	long syscall_nr = regs->orig_ax;

	return syscall_nr == NR_sendfile || syscall_nr == NR_splice || syscall_nr == NR_copy_file_range;
}

SEC("fexit/vfs_iter_write")
int BPF_PROG(dw_vfs_iter_write_exit, struct file *file, struct iov_iter *iter, loff_t *pos, rwf_t flags,
	     ssize_t ret)
{
	__u32 dev;

	if (ret <= 0 || !in_splice_write_syscall())
		return 0;
	dev = destination_dev_typed(file);
	if (dev)
		account_write(dev, ret);
	return 0;
}

/* ---- family 2: tp_btf/sys_exit (typed pt_regs) ---------------------------- */

SEC("tp_btf/sys_exit")
int BPF_PROG(dw_sys_exit_btf, struct pt_regs *regs, long ret)
{
	int argument = destination_fd_argument(regs->orig_ax);

	if (argument < 0 || ret <= 0)
		return 0;
	account_fd_write(argument == 0 ? regs->di : regs->dx, ret);
	return 0;
}

/* ---- family 3: raw_tp/sys_exit (untyped args) ------------------------------ */

SEC("raw_tp/sys_exit")
int dw_sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long ret = (long)ctx->args[1];
	int argument = destination_fd_argument(BPF_CORE_READ(regs, orig_ax));

	if (argument < 0 || ret <= 0)
		return 0;
	account_fd_write(syscall_argument(regs, argument), ret);
	return 0;
}

/* ---- family 4: classic syscall tracepoints (pairing through a map) -------- */

static __always_inline int remember_fd(long fd)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 value = fd;

	if (bpf_map_update_elem(&dw_pending_fds, &tid, &value, BPF_ANY))
		dw_count_error(DW_ERR_PAIRING_MAP_FULL);
	return 0;
}

static __always_inline int account_remembered_fd(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *fd = bpf_map_lookup_elem(&dw_pending_fds, &tid);

	if (!fd)
		return 0;
	if (ret > 0)
		account_fd_write(*fd, ret);
	bpf_map_delete_elem(&dw_pending_fds, &tid);
	return 0;
}

/* Layout of the classic syscall tracepoint records (see the tracefs format
 * files): common header, syscall nr, then the arguments as longs. */
struct syscall_enter_record {
	struct trace_entry common;
	int syscall_nr;
	long args[6];
};

struct syscall_exit_record {
	struct trace_entry common;
	int syscall_nr;
	long ret;
};

#define DW_TRACEPOINT_PAIR(name, fd_index)                                         \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                \
	int dw_enter_##name(struct syscall_enter_record *record)                   \
	{                                                                          \
		return remember_fd(record->args[fd_index]);                        \
	}                                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int dw_exit_##name(struct syscall_exit_record *record)                     \
	{                                                                          \
		return account_remembered_fd(record->ret);                         \
	}

DW_TRACEPOINT_PAIR(write, 0)
DW_TRACEPOINT_PAIR(pwrite64, 0)
DW_TRACEPOINT_PAIR(writev, 0)
DW_TRACEPOINT_PAIR(pwritev, 0)
DW_TRACEPOINT_PAIR(pwritev2, 0)
DW_TRACEPOINT_PAIR(sendfile64, 0)
DW_TRACEPOINT_PAIR(splice, 2)
DW_TRACEPOINT_PAIR(copy_file_range, 2)

/* ---- process lifecycle ----------------------------------------------------- */

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
	bpf_ringbuf_submit(event, 0);
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
