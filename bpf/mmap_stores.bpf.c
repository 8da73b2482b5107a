// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Stores through a shared writable mmap, counted as the pages they dirty:
 * every family.
 */
#include "write_path.bpf.h"

/* ---- stores through a shared writable mmap: every family ------------------- */

/* Older layouts of struct folio (CO-RE flavors):
 *  - until 6.6 a large folio's order had its own byte (_folio_order; since,
 *    the low byte of _flags_1): ebc1baf5c9b4 ("mm: free up a word in the
 *    first tail page"; the id the mm tree's logs give for it);
 *  - until 6.18 the page flags were a plain unsigned long (since, flags.f):
 *    53fbef56e07d ("mm: introduce memdesc_flags_t"). */
struct folio___folio_order {
	__u8 _folio_order;
} __attribute__((preserve_access_index));

struct folio___ulong_flags {
	unsigned long flags;
} __attribute__((preserve_access_index));

static __always_inline __u64 folio_bytes(struct folio *folio)
{
	struct folio___folio_order *with_order_byte = (void *)folio;
	struct folio___ulong_flags *with_ulong_flags = (void *)folio;
	unsigned long flags = 0;
	__u32 order = 0;

	if (bpf_core_field_exists(with_ulong_flags->flags))
		flags = BPF_CORE_READ(with_ulong_flags, flags);
	else
		flags = BPF_CORE_READ(folio, flags.f);
	if (!(flags & (1UL << bpf_core_enum_value(enum pageflags, PG_head))))
		return PAGE_SIZE;
	if (bpf_core_field_exists(with_order_byte->_folio_order))
		order = BPF_CORE_READ(with_order_byte, _folio_order);
	else if (bpf_core_field_exists(folio->_flags_1))
		order = BPF_CORE_READ(folio, _flags_1) & 0xff;
	return (__u64)PAGE_SIZE << (order & 31);
}

/* A clean page of a file became dirty. Count it as a store through a shared
 * mapping when the dirtying task is a user task outside every syscall that
 * is counted by its own hook: in a page fault (orig_ax -1) or a syscall that
 * writes user memory (read() into a mapped file). Writeback kworkers, the
 * flusher and jbd2 are kernel threads and never writers of user data. */
static __always_inline int on_folio_dirtied(struct folio *folio, struct address_space *mapping)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct dw_destination dest = {};

	if (!dw_part_on(DW_PART_DIRTY_FOLIO))
		return 0;
	if (!mapping || (task->flags & (PF_KTHREAD | PF_IO_WORKER)))
		return 0;
	if (dirtying_already_counted(task_syscall(task)))
		return 0;
	destination_of_inode(BPF_CORE_READ(mapping, host), &dest);
	/* Regular files only: a block device's page cache is dirtied by file
	 * systems' metadata, not by a user's stores. */
	if (!dest.dev || !dest.ino)
		return 0;
	account_write(task, dest.dev, folio_bytes(folio), 0, dest.ino);
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(dw_dirty_folio_btf, struct folio *folio, struct address_space *mapping)
{
	return on_folio_dirtied(folio, mapping);
}

SEC("raw_tp/writeback_dirty_folio")
int dw_dirty_folio_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_folio_dirtied((struct folio *)ctx->args[0], (struct address_space *)ctx->args[1]);
}
