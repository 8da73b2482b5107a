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

	if (ret <= 0) {
		/* The disk is full: count who keeps trying (issue #20). The typed
		 * file names the device without an fd lookup. */
		if (ret < 0 && is_nospace(ret)) {
			destination_typed(file, &dest);
			if (dest.dev)
				account_nospace(bpf_get_current_task_btf(), dest.dev, dest.ino);
		}
		return 0;
	}
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
 * from iter_file_splice_write, which called vfs_iter_write up to v6.7 and
 * calls the file's ->write_iter directly since v6.8 (the vmtest caught
 * fentry missing all three on 6.1, and again on 6.12 after an
 * fexit/vfs_iter_write fix that held only before 6.8). So they are counted
 * as the syscall-exit families count them: fexit on the three syscalls' own
 * x86-64 entry points, the destination fd from the user pt_regs (1st
 * argument for sendfile, 3rd for splice and copy_file_range) and the return
 * value. No kernel-internal caller of the VFS (overlayfs passing a write on
 * to its upper file, the loop driver, nfsd) can reach these, so nothing is
 * counted twice. */
static __always_inline int on_splice_syscall_exit(long nr, const struct pt_regs *regs, long ret)
{
	const long fd = nr == NR_sendfile ? regs->di : regs->dx;

	if (ret <= 0) {
		if (ret < 0 && is_nospace(ret))
			account_fd_nospace(fd, false);
		return 0;
	}
	account_fd_write(nr, fd, ret, -1, false);
	return 0;
}

SEC("fexit/__x64_sys_sendfile64")
int BPF_PROG(dw_sendfile64_exit, const struct pt_regs *regs, long ret)
{
	return on_splice_syscall_exit(NR_sendfile, regs, ret);
}

SEC("fexit/__x64_sys_splice")
int BPF_PROG(dw_splice_exit, const struct pt_regs *regs, long ret)
{
	return on_splice_syscall_exit(NR_splice, regs, ret);
}

SEC("fexit/__x64_sys_copy_file_range")
int BPF_PROG(dw_copy_file_range_exit, const struct pt_regs *regs, long ret)
{
	return on_splice_syscall_exit(NR_copy_file_range, regs, ret);
}

SEC("fexit/vfs_fallocate")
int BPF_PROG(dw_vfs_fallocate_exit, struct file *file, int mode, loff_t offset, loff_t len, int ret)
{
	if (ret == 0)
		account_resize(file);
	else if (is_nospace(ret))
		account_file_nospace(file);
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
	else if (is_nospace(ret))
		account_fd_nospace(regs->di, false);
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
