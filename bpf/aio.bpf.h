/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Linux AIO (io_submit): the bytes of its writes are counted when they are
 * reaped, from io_getevents' results (every family hooks the exit of
 * io_getevents and io_pgetevents its own way: bpf/hooks_*.bpf.c).
 */
#ifndef DISKWATCH_AIO_BPF_H
#define DISKWATCH_AIO_BPF_H

#include "write_path.bpf.h"

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
		if (iocb.aio_lio_opcode != IOCB_CMD_PWRITE && iocb.aio_lio_opcode != IOCB_CMD_PWRITEV)
			continue;
		/* A failed write counts only when the disk was full (issue #20). */
		if (event.res == 0 || (event.res < 0 && !is_nospace(event.res)))
			continue;
		struct file *file = current_file_of_fd(iocb.aio_fildes);

		if (!file) {
			dw_count_error(DW_ERR_FILE_LOOKUP);
			continue;
		}
		if (event.res < 0)
			account_file_nospace(file);
		else
			account_file_write(file, event.res, -1);
	}
}

#endif /* DISKWATCH_AIO_BPF_H */
