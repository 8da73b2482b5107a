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
 *   fentry      fexit/vfs_write, fexit/vfs_writev   typed struct file, no fd lookup
 *               (+ fexit/vfs_iter_write for sendfile, splice, copy_file_range;
 *               fexit/vfs_fallocate; the tp_btf io_uring and page-dirtying hooks)
 *   tp_btf      tp_btf/sys_exit                     typed pt_regs; fd -> file
 *   raw_tp      raw_tp/sys_exit                     untyped: every read is a probe read
 *   tracepoint  syscalls/sys_{enter,exit}_*         needs tracefs; fd paired via a map
 *
 * Every write path, and the one hook that counts it (docs/attribution.md):
 *   write, pwrite64, writev, pwritev, pwritev2, sendfile, splice,
 *   copy_file_range (O_DIRECT or not)      the family's syscall-exit hook
 *   io_uring write/writev/splice           io_uring_complete (tp_btf / raw_tp)
 *   Linux AIO (io_submit)                  sys_exit of io_getevents: the reaped
 *                                          completions' results
 *   stores through a shared mmap           writeback_dirty_folio in the dirtying
 *                                          task, unless that task is inside one
 *                                          of the syscalls above (already counted)
 *                                          or is a kernel / io_uring worker thread
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
#include "file_growth.bpf.h"
#include "rate_alarm.bpf.h"
#include "throttle.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct dw_config dw_config = {};

/* False only in scripts/bench's runs that measure a part's cost by leaving it
 * out (dw_config.parts_off); a load-time constant everywhere else. */
static __always_inline bool dw_part_on(__u32 part)
{
	return !(dw_config.parts_off & part);
}

#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define O_APPEND 02000
#define FMODE_WRITE 0x2
#define PAGE_SIZE 4096

/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_write 1
#define NR_open 2
#define NR_pwrite64 18
#define NR_writev 20
#define NR_sendfile 40
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_creat 85
#define NR_io_getevents 208
#define NR_io_submit 209
#define NR_openat 257
#define NR_splice 275
#define NR_fallocate 285
#define NR_pwritev 296
#define NR_copy_file_range 326
#define NR_pwritev2 328
#define NR_io_pgetevents 333
#define NR_io_uring_enter 426
#define NR_openat2 437

/* include/uapi/linux/io_uring.h: the opcodes that write into req->file. */
#define IORING_OP_WRITEV_ 2
#define IORING_OP_WRITE_FIXED_ 5
#define IORING_OP_WRITE_ 23
#define IORING_OP_SPLICE_ 30
#define IORING_OP_WRITEV_FIXED_ 61

/* include/uapi/linux/aio_abi.h */
#define IOCB_CMD_PWRITE 1
#define IOCB_CMD_PWRITEV 8

#define RWF_APPEND 0x10 /* pwritev2 flag: append whatever the offset says */
#define OFFSET_APPENDED -2

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

/* Syscalls whose page dirtying is already counted (or is not a write of user
 * data): a page dirtied inside one of them is not counted again as a store. */
static __always_inline bool dirtying_already_counted(long syscall_nr)
{
	switch (syscall_nr) {
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
	case NR_sendfile:
	case NR_splice:
	case NR_copy_file_range:
	case NR_io_uring_enter: /* counted at io_uring_complete */
	case NR_io_submit:      /* counted when io_getevents reaps the result */
	case NR_truncate:       /* zeroing the tail of a partial page: not data */
	case NR_ftruncate:
	case NR_fallocate:
		return true;
	default:
		return false;
	}
}

/* The task's cgroup v2 id, as bpf_get_current_cgroup_id() computes it
 * (task_dfl_cgroup(task)->kn->id), read with direct loads through the typed
 * task: the write path reads the current task anyway, and on machines whose
 * kernel makes every return costly (AMD's SRSO "safe RET" mitigation) each
 * helper call saved is ~10-15 ns per write (docs/benchmarks.md). */
static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	return task->cgroups->dfl_cgrp->kn->id;
}

/* Add one write to its writer key: one lookup, an in-place add. The only
 * place bytes are added. growth: how much the file grew with it; ino: the
 * file, for userspace to name (0 for block devices). bytes == 0 with growth
 * > 0 is a size change without data (ftruncate, fallocate). */
static __always_inline void account_write(struct task_struct *task, __u32 dev, long bytes, __u64 growth, __u64 ino)
{
	struct dw_writer_key key = {
		.cgroup_id = task_cgroup_id(task),
		.tgid = task->tgid,
		.dev = dev,
	};
	struct dw_writer_counts *counts;
	__u64 calls = bytes > 0 ? 1 : 0;

	if (bytes > 0) { /* a size change alone (ftruncate, fallocate) is no write rate */
		if (dw_part_on(DW_PART_RATE_ALARM))
			dw_rate_alarm_on_write(&key, bytes);
		dw_throttle_on_write(&key, bytes);
	}
	if (!dw_part_on(DW_PART_WRITERS))
		return;
	counts = bpf_map_lookup_elem(&dw_writers, &key);
	if (!counts) {
		struct dw_writer_counts fresh = {
			.write_bytes = bytes, .write_calls = calls, .growth_bytes = growth, .last_ino = ino,
		};
		long err = bpf_map_update_elem(&dw_writers, &key, &fresh, BPF_NOEXIST);

		if (!err) {
			dw_note_counters_moved();
			return;
		}
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
	counts->write_calls += calls;
	counts->growth_bytes += growth;
	if (ino)
		counts->last_ino = ino;
	dw_note_counters_moved();
}

/* The device, inode and size a file's bytes land in; dev 0 for anything that
 * is not a regular file or a block device (pipes, sockets, ttys, character
 * devices). 0:0 is never a real superblock: anonymous device minors start at 1. */
static __always_inline void destination_typed(struct file *file, struct dw_destination *dest)
{
	struct inode *inode = file->f_inode;
	umode_t mode = inode->i_mode;

	if ((mode & S_IFMT) == S_IFREG) {
		dest->dev = inode->i_sb->s_dev;
		dest->ino = inode->i_ino;
		dest->size = inode->i_size;
	} else if ((mode & S_IFMT) == S_IFBLK) {
		dest->dev = inode->i_rdev;
		dest->size = -1;
	}
}

static __always_inline void destination_of_inode(struct inode *inode, struct dw_destination *dest)
{
	umode_t mode = BPF_CORE_READ(inode, i_mode);

	if ((mode & S_IFMT) == S_IFREG) {
		dest->dev = BPF_CORE_READ(inode, i_sb, s_dev);
		dest->ino = BPF_CORE_READ(inode, i_ino);
		dest->size = BPF_CORE_READ(inode, i_size);
	} else if ((mode & S_IFMT) == S_IFBLK) {
		dest->dev = BPF_CORE_READ(inode, i_rdev);
		dest->size = -1;
	}
}

static __always_inline void destination_probed(struct file *file, struct dw_destination *dest)
{
	destination_of_inode(BPF_CORE_READ(file, f_inode), dest);
}

/* bpf_rdonly_cast (kfunc, 6.2+): a pointer read out of kernel memory becomes
 * a typed, read-only BTF pointer, so the verifier turns its field reads into
 * direct fault-safe loads (PROBE_MEM) instead of one bpf_probe_read_kernel
 * call each: on the tp_btf hot path, the seven reads after the fd slot
 * (f_flags, f_pos, f_inode, i_mode, i_sb->s_dev, i_ino, i_size). Weak:
 * kernels before 6.2 lack it; userspace then leaves
 * dw_config.typed_file_reads at 0 and the verifier drops the call as dead code. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* The file behind a pointer read out of the fd table, typed when it can be. */
static __always_inline struct file *typed_file_of(struct file *file)
{
	return bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
}

static __always_inline bool use_typed_reads(const bool typed)
{
	return typed && dw_config.typed_file_reads;
}

/* One slot of the fd array, fds[fd]. `fds` is a number to the verifier (a
 * pointer to pointers is not a BTF type it follows), so the slot is read
 * either with a bpf_probe_read_kernel call, or, where typed reads are on, as
 * the first member of a struct kiocb cast at its address (ki_filp, a
 * struct file *, has been kiocb's first member since 2.6): one direct,
 * fault-safe load instead of a helper call on every write. */
static __always_inline struct file *fd_slot(unsigned long fds, long fd, const bool typed)
{
	struct file *file = NULL;

	if (use_typed_reads(typed) && bpf_core_field_offset(struct kiocb, ki_filp) == 0) {
		struct kiocb *slot = bpf_rdonly_cast((void *)(fds + fd * sizeof(file)),
						     bpf_core_type_id_kernel(struct kiocb));

		return slot->ki_filp;
	}
	bpf_probe_read_kernel(&file, sizeof(file), (void *)(fds + fd * sizeof(file)));
	return file;
}

/* task->files->fdt->fd[fd], from the BTF-typed current task
 * (bpf_get_current_task_btf, 5.11): the pointer hops are direct loads the
 * verifier guards (PROBE_MEM), not bpf_probe_read_kernel helper calls. The
 * hot path of every syscall family. */
static __always_inline struct file *task_file_of_fd(struct task_struct *task, long fd, const bool typed)
{
	struct files_struct *files = task->files;
	struct fdtable *fdt;

	if (!files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return NULL;
	return fd_slot((unsigned long)fdt->fd, fd, typed);
}

static __always_inline struct file *current_file_of_fd(long fd)
{
	return task_file_of_fd(bpf_get_current_task_btf(), fd, false);
}

/* A write of `ret` bytes to `file` that ended at file offset `end` (-1: not
 * known here). */
static __always_inline void account_file_write(struct file *file, long ret, __s64 end)
{
	struct dw_destination dest = {};

	destination_probed(file, &dest);
	if (dest.dev)
		account_write(bpf_get_current_task_btf(), dest.dev, ret, growth_of_write(&dest, end, ret), dest.ino);
}

/* A write syscall's destination fd and result. `offset` is where a positioned
 * write (pwrite64, pwritev, pwritev2) started, -1 otherwise; the end of a
 * write()/writev() is the file position it left. `typed`: a tp_btf program,
 * which may read the file through bpf_rdonly_cast (a compile-time constant). */
static __always_inline void account_fd_write(long syscall_nr, long fd, long ret, __s64 offset, const bool typed)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *file;
	struct dw_destination dest = {};
	const bool position_written = syscall_nr == NR_write || syscall_nr == NR_writev ||
				      (syscall_nr == NR_pwritev2 && offset == -1);
	unsigned int flags;
	__s64 position = -1;
	__s64 end = -1;
	int writers = 0;

	if (!dw_part_on(DW_PART_DEVICE)) {
		account_write(task, 1, ret, 0, 0);
		return;
	}
	file = task_file_of_fd(task, fd, typed);
	if (!file) {
		dw_count_error(DW_ERR_FILE_LOOKUP);
		return;
	}
	if (use_typed_reads(typed)) {
		struct file *typed_file = typed_file_of(file);

		flags = typed_file->f_flags;
		if (flags & O_APPEND)
			writers = typed_file->f_inode->i_writecount.counter;
		else if (position_written)
			position = typed_file->f_pos;
		destination_typed(typed_file, &dest);
	} else {
		flags = BPF_CORE_READ(file, f_flags);
		if (flags & O_APPEND)
			writers = BPF_CORE_READ(file, f_inode, i_writecount.counter);
		else if (position_written)
			position = BPF_CORE_READ(file, f_pos);
		destination_probed(file, &dest);
	}
	if (!dest.dev)
		return;
	if (!dw_part_on(DW_PART_GROWTH)) {
		account_write(task, dest.dev, ret, 0, dest.ino);
		return;
	}
	if (flags & O_APPEND) {
		account_write(task, dest.dev, ret, growth_of_append(&dest, ret, writers), dest.ino);
		return;
	}
	if (offset == OFFSET_APPENDED)
		end = -1; /* RWF_APPEND lands at the end whatever the offset said */
	else if (position_written)
		end = position;
	else if (offset >= 0)
		end = offset + ret;
	account_write(task, dest.dev, ret, growth_of_write(&dest, end, ret), dest.ino);
}

/* open/openat/openat2/creat returned fd: remember the size of a regular file
 * opened for writing (after O_TRUNC), so its growth is measured from there. */
static __always_inline void remember_opened_size(long fd, const bool typed)
{
	struct file *file = task_file_of_fd(bpf_get_current_task_btf(), fd, typed);
	struct dw_destination dest = {};
	int writers;

	if (!file)
		return;
	if (use_typed_reads(typed)) {
		struct file *typed_file = typed_file_of(file);

		if (!(typed_file->f_mode & FMODE_WRITE))
			return;
		writers = typed_file->f_inode->i_writecount.counter;
		destination_typed(typed_file, &dest);
	} else {
		if (!(BPF_CORE_READ(file, f_mode) & FMODE_WRITE))
			return;
		writers = BPF_CORE_READ(file, f_inode, i_writecount.counter);
		destination_probed(file, &dest);
	}
	if (dest.dev)
		note_size_at_open(&dest, writers);
}

/* ftruncate/fallocate succeeded on `file`: count how much it grew. */
static __always_inline void account_resize(struct file *file)
{
	struct dw_destination dest = {};
	__u64 growth;

	if (!file)
		return;
	destination_probed(file, &dest);
	if (!dest.dev || !dest.ino)
		return;
	growth = set_known_size(&dest);
	if (growth)
		account_write(bpf_get_current_task_btf(), dest.dev, 0, growth, dest.ino);
}

/* Linux AIO: io_getevents returned `count` completions into the user array
 * `events`. Each names its iocb (user memory, still the submitter's), whose
 * opcode and fd say whether it was a write and where; `res` is its result. */
struct dw_io_event {
	__u64 data;
	__u64 obj; /* the user's struct iocb * */
	__s64 res;
	__s64 res2;
};

struct dw_iocb_head { /* struct iocb from aio_lio_opcode on (little endian) */
	__u16 aio_lio_opcode;
	__s16 aio_reqprio;
	__u32 aio_fildes;
};

static __always_inline void account_aio_completions(__u64 events, long count)
{
	if (count > DW_AIO_EVENTS_MAX) {
		dw_count_error(DW_ERR_AIO_EVENTS_SKIPPED);
		count = DW_AIO_EVENTS_MAX;
	}
	for (int i = 0; i < DW_AIO_EVENTS_MAX; i++) {
		struct dw_io_event event;
		struct dw_iocb_head iocb;

		if (i >= count)
			break;
		if (bpf_probe_read_user(&event, sizeof(event), (void *)(events + i * sizeof(event))) ||
		    bpf_probe_read_user(&iocb, sizeof(iocb), (void *)(event.obj + 16))) {
			dw_count_error(DW_ERR_AIO_EVENT_READ);
			continue;
		}
		if (event.res <= 0 || (iocb.aio_lio_opcode != IOCB_CMD_PWRITE &&
				       iocb.aio_lio_opcode != IOCB_CMD_PWRITEV))
			continue;
		struct file *file = current_file_of_fd(iocb.aio_fildes);

		if (!file) {
			dw_count_error(DW_ERR_FILE_LOOKUP);
			continue;
		}
		account_file_write(file, event.res, -1);
	}
}

/* The sys_exit hook of the tp_btf and raw_tp families. `typed`: the regs
 * pointer is BTF-typed (direct reads) rather than a raw pointer (probe reads);
 * a compile-time constant, so each family compiles only its own reads. */
#define SYSCALL_REG(regs, field, typed) ((typed) ? (long)(regs)->field : (long)BPF_CORE_READ(regs, field))

static __always_inline int on_sys_exit(struct pt_regs *regs, long ret, const bool typed)
{
	long nr = SYSCALL_REG(regs, orig_ax, typed);
	int argument = destination_fd_argument(nr);

	if (argument >= 0) {
		/* The hot path: a write syscall. */
		__s64 offset = -1;

		if (ret <= 0)
			return 0;
		if (nr == NR_pwrite64 || nr == NR_pwritev || nr == NR_pwritev2)
			offset = SYSCALL_REG(regs, r10, typed);
		if (nr == NR_pwritev2 && (SYSCALL_REG(regs, r9, typed) & RWF_APPEND))
			offset = OFFSET_APPENDED;
		account_fd_write(nr, argument == 0 ? SYSCALL_REG(regs, di, typed) : SYSCALL_REG(regs, dx, typed),
				 ret, offset, typed);
		return 0;
	}
	if (nr == NR_io_uring_enter) {
		dw_throttle_on_io_uring_enter(); /* whatever it returned */
		return 0;
	}
	if (ret < 0)
		return 0;
	switch (nr) {
	case NR_open:
	case NR_openat:
	case NR_openat2:
	case NR_creat:
		remember_opened_size(ret, typed);
		break;
	case NR_ftruncate:
	case NR_fallocate:
		account_resize(current_file_of_fd(SYSCALL_REG(regs, di, typed)));
		break;
	case NR_io_getevents:
	case NR_io_pgetevents:
		if (ret > 0)
			account_aio_completions(SYSCALL_REG(regs, r10, typed), ret);
		break;
	}
	return 0;
}

/* ---- family 1: fentry (fexit on the VFS write entry points) ---------------- */

static __always_inline int on_vfs_write_exit(struct file *file, loff_t *pos, ssize_t ret)
{
	struct dw_destination dest = {};
	__s64 end = -1;

	if (ret <= 0)
		return 0;
	destination_typed(file, &dest);
	if (!dest.dev)
		return 0;
	if (file->f_flags & O_APPEND) {
		account_write(bpf_get_current_task_btf(), dest.dev, ret,
			      growth_of_append(&dest, ret, file->f_inode->i_writecount.counter), dest.ino);
		return 0;
	}
	/* *pos is where the write left the file position (ksys_write copies it
	 * to f_pos after us). */
	if (pos)
		bpf_probe_read_kernel(&end, sizeof(end), pos);
	account_write(bpf_get_current_task_btf(), dest.dev, ret, growth_of_write(&dest, end, ret), dest.ino);
	return 0;
}

SEC("fexit/vfs_write")
int BPF_PROG(dw_vfs_write_exit, struct file *file, const char *buf, size_t count, loff_t *pos,
	     ssize_t ret)
{
	return on_vfs_write_exit(file, pos, ret);
}

SEC("fexit/vfs_writev")
int BPF_PROG(dw_vfs_writev_exit, struct file *file, const struct iovec *vec, unsigned long vlen,
	     loff_t *pos, rwf_t flags, ssize_t ret)
{
	return on_vfs_write_exit(file, pos, ret);
}

/* The syscall the current task is in (its saved user pt_regs' orig_ax), or
 * -1 in a page fault. */
static __always_inline long task_syscall(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	return regs->orig_ax;
}

static __always_inline long current_syscall(void)
{
	return task_syscall(bpf_get_current_task_btf());
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
SEC("fexit/vfs_iter_write")
int BPF_PROG(dw_vfs_iter_write_exit, struct file *file, struct iov_iter *iter, loff_t *ppos, rwf_t flags,
	     ssize_t ret)
{
	long nr;

	if (ret <= 0)
		return 0;
	nr = current_syscall();
	if (nr != NR_sendfile && nr != NR_splice && nr != NR_copy_file_range)
		return 0;
	return on_vfs_write_exit(file, ppos, ret);
}

SEC("fexit/vfs_fallocate")
int BPF_PROG(dw_vfs_fallocate_exit, struct file *file, int mode, loff_t offset, loff_t len, int ret)
{
	if (ret == 0)
		account_resize(file);
	return 0;
}

/* The rest of the fentry family's paths, without a sys_exit hook that every
 * syscall of every process would pay for: fexit on the few syscalls' own
 * entry points (x86-64 names; the argument is the user pt_regs, so the
 * arguments are at hand as at sys_exit). Each is optional. */
SEC("fexit/__x64_sys_io_getevents")
int BPF_PROG(dw_io_getevents_exit, const struct pt_regs *regs, long ret)
{
	if (ret > 0)
		account_aio_completions(regs->r10, ret);
	return 0;
}

/* A throttled io_uring writer's bytes are charged where its requests
 * complete (often an io-wq worker, never stopped); it is stopped here, as it
 * submits or reaps, while it owes bytes (bpf/throttle.bpf.h). */
SEC("fexit/__x64_sys_io_uring_enter")
int BPF_PROG(dw_io_uring_enter_exit, const struct pt_regs *regs, long ret)
{
	dw_throttle_on_io_uring_enter();
	return 0;
}

SEC("fexit/__x64_sys_io_pgetevents")
int BPF_PROG(dw_io_pgetevents_exit, const struct pt_regs *regs, long ret)
{
	if (ret > 0)
		account_aio_completions(regs->r10, ret);
	return 0;
}

SEC("fexit/__x64_sys_ftruncate")
int BPF_PROG(dw_ftruncate_exit, const struct pt_regs *regs, long ret)
{
	if (ret == 0)
		account_resize(current_file_of_fd(regs->di));
	return 0;
}

#define DW_FEXIT_OPEN(name)                                                        \
	SEC("fexit/__x64_sys_" #name)                                              \
	int BPF_PROG(dw_##name##_exit, const struct pt_regs *regs, long ret)       \
	{                                                                          \
		if (ret >= 0)                                                      \
			remember_opened_size(ret, false);                          \
		return 0;                                                          \
	}

DW_FEXIT_OPEN(open)
DW_FEXIT_OPEN(openat)
DW_FEXIT_OPEN(openat2)
DW_FEXIT_OPEN(creat)

/* ---- family 2: tp_btf/sys_exit (typed pt_regs) ---------------------------- */

SEC("tp_btf/sys_exit")
int BPF_PROG(dw_sys_exit_btf, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret, true);
}

/* ---- family 3: raw_tp/sys_exit (untyped args) ------------------------------ */

SEC("raw_tp/sys_exit")
int dw_sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_sys_exit((struct pt_regs *)ctx->args[0], (long)ctx->args[1], false);
}

/* ---- io_uring: every family ------------------------------------------------ */

/* A request's completion, in the task that owns the ring (inline completion,
 * task_work) or one of its io-wq / sqpoll threads: threads of the same
 * process, so the tgid is the owner's. The io_uring_enter syscall itself
 * returns a count of submissions and is never counted as bytes. */
static __always_inline int on_io_uring_complete(void *request)
{
	struct io_kiocb *req = request;
	__u8 opcode;
	__s32 res;

	/* Kernels before 5.19 pass no request to this tracepoint. */
	if (!bpf_core_field_exists(req->cqe))
		return 0;
	opcode = BPF_CORE_READ(req, opcode);
	if (opcode != IORING_OP_WRITE_ && opcode != IORING_OP_WRITEV_ && opcode != IORING_OP_WRITE_FIXED_ &&
	    opcode != IORING_OP_WRITEV_FIXED_ && opcode != IORING_OP_SPLICE_)
		return 0;
	res = BPF_CORE_READ(req, cqe.res);
	if (res <= 0)
		return 0;
	account_file_write(BPF_CORE_READ(req, file), res, -1);
	return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(dw_io_uring_complete_btf, void *ctx_, void *req, struct io_uring_cqe *cqe)
{
	return on_io_uring_complete(req);
}

SEC("raw_tp/io_uring_complete")
int dw_io_uring_complete_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_io_uring_complete((void *)ctx->args[1]);
}

/* ---- stores through a shared writable mmap: every family ------------------- */

/* Older layouts of struct folio (CO-RE flavors): until 6.6 a large folio's
 * order had its own byte (_folio_order; since, the low byte of _flags_1);
 * until memdesc_flags_t (6.18) the page flags were a plain unsigned long. */
struct folio___folio_order {
	__u8 _folio_order;
} __attribute__((preserve_access_index));

struct folio___ulong_flags {
	unsigned long flags;
} __attribute__((preserve_access_index));

static __always_inline __u64 folio_bytes(struct folio *folio)
{
	struct folio___folio_order *with_order_byte = (void *)folio;
	struct folio___ulong_flags *with_ulong_flags = (void *)folio;
	unsigned long flags = 0;
	__u32 order = 0;

	if (bpf_core_field_exists(with_ulong_flags->flags))
		flags = BPF_CORE_READ(with_ulong_flags, flags);
	else
		flags = BPF_CORE_READ(folio, flags.f);
	if (!(flags & (1UL << bpf_core_enum_value(enum pageflags, PG_head))))
		return PAGE_SIZE;
	if (bpf_core_field_exists(with_order_byte->_folio_order))
		order = BPF_CORE_READ(with_order_byte, _folio_order);
	else if (bpf_core_field_exists(folio->_flags_1))
		order = BPF_CORE_READ(folio, _flags_1) & 0xff;
	return (__u64)PAGE_SIZE << (order & 31);
}

/* A clean page of a file became dirty. Count it as a store through a shared
 * mapping when the dirtying task is a user task outside every syscall that
 * is counted by its own hook: in a page fault (orig_ax -1) or a syscall that
 * writes user memory (read() into a mapped file). Writeback kworkers, the
 * flusher and jbd2 are kernel threads and never writers of user data. */
static __always_inline int on_folio_dirtied(struct folio *folio, struct address_space *mapping)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dw_destination dest = {};

	if (!dw_part_on(DW_PART_DIRTY_FOLIO))
		return 0;
	if (!mapping || (task->flags & (PF_KTHREAD | PF_IO_WORKER)))
		return 0;
	if (dirtying_already_counted(task_syscall(task)))
		return 0;
	destination_of_inode(BPF_CORE_READ(mapping, host), &dest);
	/* Regular files only: a block device's page cache is dirtied by file
	 * systems' metadata, not by a user's stores. */
	if (!dest.dev || !dest.ino)
		return 0;
	account_write(task, dest.dev, folio_bytes(folio), 0, dest.ino);
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(dw_dirty_folio_btf, struct folio *folio, struct address_space *mapping)
{
	return on_folio_dirtied(folio, mapping);
}

SEC("raw_tp/writeback_dirty_folio")
int dw_dirty_folio_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_folio_dirtied((struct folio *)ctx->args[0], (struct address_space *)ctx->args[1]);
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
		account_fd_write(0, *fd, ret, -1, false);
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

/* The rest of the paths for this family: the same pairing (the map holds the
 * argument the exit needs: an fd, or io_getevents' events array). */
static __always_inline __u64 take_remembered(bool *found)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *value = bpf_map_lookup_elem(&dw_pending_fds, &tid);
	__u64 copy = 0;

	*found = value != NULL;
	if (value) {
		copy = *value;
		bpf_map_delete_elem(&dw_pending_fds, &tid);
	}
	return copy;
}

#define DW_TRACEPOINT_RESIZE(name)                                                 \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                \
	int dw_enter_##name(struct syscall_enter_record *record)                   \
	{                                                                          \
		return remember_fd(record->args[0]);                               \
	}                                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int dw_exit_##name(struct syscall_exit_record *record)                     \
	{                                                                          \
		bool found;                                                        \
		long fd = take_remembered(&found);                                 \
		if (found && record->ret == 0)                                     \
			account_resize(current_file_of_fd(fd));                    \
		return 0;                                                          \
	}

DW_TRACEPOINT_RESIZE(ftruncate)
DW_TRACEPOINT_RESIZE(fallocate)

/* A throttled io_uring writer is stopped as it submits or reaps (see
 * dw_io_uring_enter_exit). */
SEC("tracepoint/syscalls/sys_exit_io_uring_enter")
int dw_exit_io_uring_enter(struct syscall_exit_record *record)
{
	dw_throttle_on_io_uring_enter();
	return 0;
}

#define DW_TRACEPOINT_AIO(name)                                                    \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                \
	int dw_enter_##name(struct syscall_enter_record *record)                   \
	{                                                                          \
		return remember_fd(record->args[3]); /* the io_event array */      \
	}                                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int dw_exit_##name(struct syscall_exit_record *record)                     \
	{                                                                          \
		bool found;                                                        \
		__u64 events = take_remembered(&found);                            \
		if (found && record->ret > 0)                                      \
			account_aio_completions(events, record->ret);              \
		return 0;                                                          \
	}

DW_TRACEPOINT_AIO(io_getevents)
DW_TRACEPOINT_AIO(io_pgetevents)

/* Opens need no pairing: the exit has the fd. */
#define DW_TRACEPOINT_OPEN(name)                                                   \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int dw_exit_##name(struct syscall_exit_record *record)                     \
	{                                                                          \
		if (record->ret >= 0)                                              \
			remember_opened_size(record->ret, false);                  \
		return 0;                                                          \
	}

DW_TRACEPOINT_OPEN(open)
DW_TRACEPOINT_OPEN(openat)
DW_TRACEPOINT_OPEN(openat2)
DW_TRACEPOINT_OPEN(creat)

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

/* ---- SIGCONT to a throttled writer: every family ---------------------------- */

SEC("tp_btf/signal_generate")
int BPF_PROG(dw_signal_generate_btf, int sig, struct kernel_siginfo *info, struct task_struct *task)
{
	return dw_on_signal_generate(sig, task);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(dw_sigcont_restop_btf, int sig, struct kernel_siginfo *info, struct task_struct *task)
{
	if (!dw_config.sigcont_restop)
		return 0;
	return dw_restop_defied(sig, task);
}

SEC("raw_tp/signal_generate")
int dw_signal_generate_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return dw_on_signal_generate((int)ctx->args[0], (struct task_struct *)ctx->args[2]);
}
