// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Family 1: fexit on the VFS write entry points (typed struct file, no fd
 * lookup), and on the syscalls of growth, AIO and io_uring_enter.
 */
#include "write_path.bpf.h"
#include "aio.bpf.h"

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

/* sendfile, splice and copy_file_range never pass through vfs_write or
 * vfs_writev: the kernel moves their bytes through a pipe and writes them
 * with iter_file_splice_write -> vfs_iter_write (fs/splice.c, v6.1 through
 * v6.18; the vmtest caught fentry missing all three on 6.1). Other callers of
 * vfs_iter_write must not count: overlayfs hands a write() already counted at
 * vfs_write on to its upper file this way, and the loop driver, nfsd and
 * target_core_file write through it from kernel threads. So count it only
 * inside those three syscalls, told by the syscall number in the task's saved
 * user registers (bpf_task_pt_regs: v5.15, dd6e10fbd9fb "bpf: Add
 * bpf_task_pt_regs() helper"; a kernel
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
