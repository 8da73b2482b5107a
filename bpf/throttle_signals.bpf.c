// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * SIGCONT to a throttled writer: who sent it (signal_generate), and where
 * the kernel can, the stop put back at once; and the throttle's global
 * functions (bpf/throttle.bpf.h), defined once for the whole object.
 */
#include "write_path.bpf.h"

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

/* A global (not inlined) function: the verifier checks it once, on its own,
 * instead of once per inlined account_write() (the AIO completion loop
 * inlines 64 of them: inlined, this body took the program past the
 * verifier's million instructions). Scalars only, as global functions take. */
__noinline int dw_throttle_writes(__u32 tgid, __u64 cgroup_id, __s64 bytes)
{
	__u32 scopes = dw_rate_alarm_config.throttled_scopes;

	if (scopes & (1u << DW_ALARM_SCOPE_PROCESS))
		dw_throttle_charge(DW_ALARM_SCOPE_PROCESS, tgid, tgid, bytes);
	if (scopes & (1u << DW_ALARM_SCOPE_CGROUP))
		dw_throttle_charge(DW_ALARM_SCOPE_CGROUP, cgroup_id, tgid, bytes);
	return 0;
}

__noinline int dw_throttle_check_owing(__u32 tgid, __u64 cgroup_id)
{
	__u32 scopes = dw_rate_alarm_config.throttled_scopes;

	if (scopes & (1u << DW_ALARM_SCOPE_PROCESS))
		dw_throttle_stop_if_owing(DW_ALARM_SCOPE_PROCESS, tgid, tgid);
	if (scopes & (1u << DW_ALARM_SCOPE_CGROUP))
		dw_throttle_stop_if_owing(DW_ALARM_SCOPE_CGROUP, cgroup_id, tgid);
	return 0;
}
