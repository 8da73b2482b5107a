/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The write path every hook family shares: who wrote (the current task's
 * process and cgroup), where (device and inode of the file or block device,
 * from an fd or a struct file), how much it grew, and the one place bytes are
 * added (account_write). Static inline helpers only: each program file of the
 * object (bpf/hooks_*.bpf.c, io_uring, mmap_stores, lifecycle, throttle_signals)
 * includes this header; bpf/diskwatch.bpf.c says how they are put together.
 */
#ifndef DISKWATCH_WRITE_PATH_BPF_H
#define DISKWATCH_WRITE_PATH_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "maps.bpf.h"
#include "file_growth.bpf.h"
#include "rate_alarm.bpf.h"
#include "throttle.bpf.h"

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
#define ENOSPC 28  /* no space left on the device */
#define EDQUOT 122 /* the writer's disk quota is spent */

/* A write-path result that says the disk (or the writer's quota) is full:
 * what nospace_failures counts. Callers test it only once ret < 0, so the
 * success path pays nothing for it. */
static __always_inline bool is_nospace(long ret)
{
	return ret == -ENOSPC || ret == -EDQUOT;
}

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

/* A write-path call failed with ENOSPC or EDQUOT (is_nospace): one more
 * failure on the key a success would have added to. Only on the failure
 * branch (ret < 0), never the success path. No bytes landed, so no rate
 * alarm and no throttle is charged. The file is remembered only when the key
 * names none yet: a writer that only ever fails still gets a file in its row,
 * and one that writes elsewhere keeps its last written file. */
static __always_inline void account_nospace(struct task_struct *task, __u32 dev, __u64 ino)
{
	struct dw_writer_key key = {
		.cgroup_id = task_cgroup_id(task),
		.tgid = task->tgid,
		.dev = dev,
	};
	struct dw_writer_counts *counts;

	if (!dw_part_on(DW_PART_WRITERS))
		return;
	counts = bpf_map_lookup_elem(&dw_writers, &key);
	if (!counts) {
		struct dw_writer_counts fresh = { .last_ino = ino, .nospace_failures = 1 };
		long err = bpf_map_update_elem(&dw_writers, &key, &fresh, BPF_NOEXIST);

		if (!err) {
			dw_note_counters_moved();
			return;
		}
		if (err != -EEXIST) {
			dw_count_error(DW_ERR_WRITERS_MAP_FULL);
			return;
		}
		counts = bpf_map_lookup_elem(&dw_writers, &key); /* as in account_write */
		if (!counts)
			return;
	}
	counts->nospace_failures += 1;
	if (ino && !counts->last_ino)
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

/* bpf_rdonly_cast (kfunc, 6.2+: a35b9af4ec2c "bpf: Add a kfunc for generic
 * type cast"): a pointer read out of kernel memory becomes
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
 * (bpf_get_current_task_btf, 5.11: 3ca1032ab7ab "bpf: Implement
 * get_current_task_btf and RET_PTR_TO_BTF_ID"): the pointer hops are direct loads the
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

/* A write-path call on `file` failed with ENOSPC or EDQUOT (io_uring, AIO,
 * vfs_fallocate): counted against the file's device like its bytes would
 * have been. */
static __always_inline void account_file_nospace(struct file *file)
{
	struct dw_destination dest = {};

	if (!file)
		return;
	destination_probed(file, &dest);
	if (dest.dev)
		account_nospace(bpf_get_current_task_btf(), dest.dev, dest.ino);
}

/* A write syscall on `fd` failed with ENOSPC or EDQUOT. At its exit the fd
 * still names the file it failed on (only another thread's close in between
 * loses it: counted as a lookup error, like a success's). `typed` as for
 * account_fd_write. */
static __always_inline void account_fd_nospace(long fd, const bool typed)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dw_destination dest = {};
	struct file *file;

	if (!dw_part_on(DW_PART_DEVICE)) {
		account_nospace(task, 1, 0);
		return;
	}
	file = task_file_of_fd(task, fd, typed);
	if (!file) {
		dw_count_error(DW_ERR_FILE_LOOKUP);
		return;
	}
	if (use_typed_reads(typed))
		destination_typed(typed_file_of(file), &dest);
	else
		destination_probed(file, &dest);
	if (dest.dev)
		account_nospace(task, dest.dev, dest.ino);
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

#endif /* DISKWATCH_WRITE_PATH_BPF_H */
