// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Family 4: classic syscall tracepoints, where nothing better loads: each
 * write syscall's enter remembers its fd, its exit counts its bytes.
 * Programs (made by the macros below): dw_enter_/dw_exit_ + write, pwrite64,
 * writev, pwritev, pwritev2, sendfile64, splice, copy_file_range, ftruncate,
 * fallocate, io_getevents, io_pgetevents; dw_exit_ + open, openat, openat2,
 * creat; and dw_exit_io_uring_enter.
 */
#include "write_path.bpf.h"
#include "aio.bpf.h"

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
	else if (ret < 0 && is_nospace(ret))
		account_fd_nospace(*fd, false);
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
		else if (found && is_nospace(record->ret))                         \
			account_fd_nospace(fd, false);                             \
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
