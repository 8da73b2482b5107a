// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Feature calibration: one empty program per attach type. Userspace loads and
 * attaches each alone (probe_kernel_features, userspace/kernel/hooks.cpp);
 * what attaches here is what the write hooks of bpf/hooks_*.bpf.c can use.
 * Probing by attaching,
 * not by asking libbpf whether a program type exists, because the answer that
 * matters is "does this attach": on kernels without ftrace trampolines the
 * tracing program type exists (tp_btf works) while fentry fails with EPERM.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("fexit/vfs_write")
int BPF_PROG(probe_fentry, struct file *file, const char *buf, size_t count, loff_t *pos, ssize_t ret)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(probe_tp_btf, struct pt_regs *regs, long ret)
{
	return 0;
}

SEC("raw_tp/sys_exit")
int probe_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int probe_tracepoint(void *ctx)
{
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_ringbuf SEC(".maps");

SEC("raw_tp/sys_exit")
int probe_ringbuf_prog(struct bpf_raw_tracepoint_args *ctx)
{
	bpf_ringbuf_output(&probe_ringbuf, &ctx, sizeof(ctx), 0);
	return 0;
}
