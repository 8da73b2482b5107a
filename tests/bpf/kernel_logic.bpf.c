// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The kernel side's logic, run under BPF_PROG_TEST_RUN
 * (tests/integration/test_kernel_logic.cpp), as tetragon's bpf/tests do: the
 * same headers the write hooks include, called from SEC("syscall") programs
 * whose context is the test's own struct (tp_btf and fentry programs cannot
 * be test-run on machines without trampolines). The clock is an argument:
 * every case says what time it is.
 *
 * One program per piece of logic; `op` picks the call. The structs here and in
 * the test are the same layout (each side checks its size).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "maps.bpf.h"
#include "file_growth.bpf.h"
#include "rate_alarm.bpf.h"
#include "throttle_allowance.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A throttle the test owns (the hooks' dw_throttles is keyed by subject). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dw_throttle);
} test_throttle SEC(".maps");

struct throttle_case {
	__u64 now;
	__s64 bytes;
	__s64 after; /* out: the allowance after the charge */
};

SEC("syscall")
int throttle_charge(struct throttle_case *args)
{
	__u32 zero = 0;
	struct dw_throttle *throttle = bpf_map_lookup_elem(&test_throttle, &zero);

	if (!throttle)
		return 1;
	args->after = dw_throttle_account(throttle, args->bytes, args->now);
	return 0;
}

struct rate_case {
	__u64 now;
	__s64 bytes;
	__u64 id;
	__u32 scope;
	__u32 pad;
	__s64 tokens;        /* out: the bucket's tokens after the write */
	__u64 total_bytes;   /* out */
	__u64 last_alarm_ns; /* out: when its last alarm went out (0: never) */
};

SEC("syscall")
int rate_bucket_add(struct rate_case *args)
{
	struct dw_writer_key writer = { .tgid = (__u32)args->id, .cgroup_id = args->id };
	struct dw_rate_key key = { .id = args->id, .scope = args->scope };
	struct dw_rate_bucket *bucket;

	dw_rate_bucket_add(args->scope, args->id, &writer, args->bytes, args->now);
	bucket = bpf_map_lookup_elem(&dw_rate_buckets, &key);
	if (!bucket)
		return 1;
	args->tokens = bucket->tokens;
	args->total_bytes = bucket->total_bytes;
	args->last_alarm_ns = bucket->last_alarm_ns;
	return 0;
}

enum growth_op { GROWTH_WRITE, GROWTH_APPEND, GROWTH_OPEN, GROWTH_SET };

struct growth_case {
	__u32 op;
	__u32 dev;
	__u64 ino;
	__s64 size;   /* i_size after the call's write / at open */
	__s64 end;    /* GROWTH_WRITE: where the write ended (-1: unknown) */
	__s64 bytes;  /* GROWTH_WRITE, GROWTH_APPEND */
	__s32 writers; /* GROWTH_APPEND, GROWTH_OPEN: i_writecount */
	__u32 pad;
	__u64 growth; /* out */
	__u64 known;  /* out: the known size after the call (0: none) */
};

SEC("syscall")
int file_growth(struct growth_case *args)
{
	struct dw_destination dest = { .dev = args->dev, .ino = args->ino, .size = args->size };
	struct dw_file_key key = { .dev = args->dev, .ino = args->ino };
	__u64 *known;

	args->growth = 0;
	switch (args->op) {
	case GROWTH_WRITE:
		args->growth = growth_of_write(&dest, args->end, args->bytes);
		break;
	case GROWTH_APPEND:
		args->growth = growth_of_append(&dest, args->bytes, args->writers);
		break;
	case GROWTH_OPEN:
		note_size_at_open(&dest, args->writers);
		break;
	case GROWTH_SET:
		args->growth = set_known_size(&dest);
		break;
	default:
		return 1;
	}
	known = bpf_map_lookup_elem(&dw_file_sizes, &key);
	args->known = known ? *known : 0;
	return 0;
}
