// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Families 2 and 3: one program on every syscall's exit (tp_btf/sys_exit
 * with typed pt_regs, raw_tp/sys_exit with probe reads) that counts the
 * write syscalls and keeps file sizes and AIO completions (write_path.bpf.h).
 */
#include "write_path.bpf.h"
#include "aio.bpf.h"

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
		long fd = argument == 0 ? SYSCALL_REG(regs, di, typed) : SYSCALL_REG(regs, dx, typed);

		if (ret <= 0) {
			/* The disk is full: count who keeps trying (issue #20). */
			if (ret < 0 && is_nospace(ret))
				account_fd_nospace(fd, typed);
			return 0;
		}
		if (nr == NR_pwrite64 || nr == NR_pwritev || nr == NR_pwritev2)
			offset = SYSCALL_REG(regs, r10, typed);
		if (nr == NR_pwritev2 && (SYSCALL_REG(regs, r9, typed) & RWF_APPEND))
			offset = OFFSET_APPENDED;
		account_fd_write(nr, fd, ret, offset, typed);
		return 0;
	}
	if (nr == NR_io_uring_enter) {
		dw_throttle_on_io_uring_enter(); /* whatever it returned */
		return 0;
	}
	if (ret < 0) {
		/* A size change that found the disk full is a write that failed too. */
		if ((nr == NR_fallocate || nr == NR_ftruncate) && is_nospace(ret))
			account_fd_nospace(SYSCALL_REG(regs, di, typed), typed);
		return 0;
	}
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
