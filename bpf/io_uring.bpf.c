// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * io_uring's writes, counted at their completion: every family.
 */
#include "write_path.bpf.h"

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

	/* Kernels before 5.19 pass no request to this tracepoint (the commit that
	 * added it is not confirmed here: none cited until one is checked). */
	if (!bpf_core_field_exists(req->cqe))
		return 0;
	opcode = BPF_CORE_READ(req, opcode);
	if (opcode != IORING_OP_WRITE_ && opcode != IORING_OP_WRITEV_ && opcode != IORING_OP_WRITE_FIXED_ &&
	    opcode != IORING_OP_WRITEV_FIXED_ && opcode != IORING_OP_SPLICE_)
		return 0;
	res = BPF_CORE_READ(req, cqe.res);
	if (res <= 0) {
		/* The disk is full: the request's file names the device, in the
		 * owner's (or its io-wq thread's) process, as a success's would. */
		if (res < 0 && is_nospace(res))
			account_file_nospace(BPF_CORE_READ(req, file));
		return 0;
	}
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
