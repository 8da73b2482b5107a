/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Growth: how much the files a writer writes grew (i_size increase), beside
 * the bytes it wrote. Disks fill because files grow, not because bytes pass
 * through write(): a database rewriting its pages writes a lot and grows
 * nothing; a log grows by every byte it writes.
 *
 * The model (docs/attribution.md):
 *  - the kernel keeps, per file (dev, inode), the last size our hooks saw, in
 *    an LRU map (dw_file_sizes). A file opened for writing records its size
 *    at open when new to us, or lowers it (sys_exit of open/openat/openat2/
 *    creat, O_TRUNC already applied): never raises it (note_size_at_open);
 *  - after a write, when the write ended inside the file (end < i_size) the
 *    file did not grow: no map access at all, so rewrite-in-place costs
 *    nothing extra. Otherwise (append, extend, or end offset unknown) the
 *    known size is raised to i_size with a compare-and-swap and the difference
 *    is this write's growth: concurrent appenders never count a byte twice;
 *  - ftruncate and fallocate store the new size (a shrink lowers it, so the
 *    file's next growth counts again) and count any increase;
 *  - a file whose size is unknown (opened before the monitor started, or by a
 *    path we do not see) is assumed to have grown by the bytes written when a
 *    write reaches its end: exact for appends, an overcount of at most that
 *    write for a rewrite that ends exactly at the old end of file.
 */
#ifndef DISKWATCH_FILE_GROWTH_BPF_H
#define DISKWATCH_FILE_GROWTH_BPF_H

#include "diskwatch/abi.h"

/* A file as the growth model names it. Kernel-internal, never read by userspace. */
struct dw_file_key {
	__u32 dev;
	__u32 pad;
	__u64 ino;
};

/* Last known i_size per file. LRU: files not written for a while are forgotten,
 * and fall back to the "unknown size" rule above. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dw_file_key);
	__type(value, __u64);
} dw_file_sizes SEC(".maps");

/* What a write landed in: the destination's device, inode and size now. */
struct dw_destination {
	__u32 dev;  /* 0: not a regular file nor a block device: not counted */
	__u32 pad;
	__u64 ino;  /* 0 for block devices */
	__s64 size; /* i_size after the write; -1 for block devices (they do not grow) */
};

/* Raises the file's known size to size_now; returns by how much it grew.
 * unknown_growth is what to count when the file was never seen. */
static __always_inline __u64 raise_known_size(const struct dw_destination *dest, __u64 unknown_growth)
{
	struct dw_file_key key = { .dev = dest->dev, .ino = dest->ino };
	__u64 size_now = dest->size;
	__u64 *known = bpf_map_lookup_elem(&dw_file_sizes, &key);

	if (!known) {
		if (bpf_map_update_elem(&dw_file_sizes, &key, &size_now, BPF_NOEXIST) == 0)
			return unknown_growth < size_now ? unknown_growth : size_now;
		/* Another CPU made it first: raise theirs, as below. */
		known = bpf_map_lookup_elem(&dw_file_sizes, &key);
		if (!known)
			return 0;
	}
	/* Only ever raise it here: two CPUs appending to one file each count
	 * the part they moved the end by, never the same part twice. */
	for (int attempt = 0; attempt < 4; attempt++) {
		__u64 old = *known;

		if (size_now <= old)
			return 0;
		if (__sync_val_compare_and_swap(known, old, size_now) == old)
			return size_now - old;
	}
	return 0;
}

/* Growth caused by a write of `bytes` that ended at file offset `end`
 * (-1: unknown, e.g. splice with an offset pointer or io_uring). */
static __always_inline __u64 growth_of_write(const struct dw_destination *dest, __s64 end, long bytes)
{
	if (dest->size < 0 || dest->ino == 0)
		return 0;
	if (end >= 0 && end < dest->size)
		return 0; /* ended inside the file: a rewrite, no growth */
	return raise_known_size(dest, bytes);
}

/* A file opened for writing: remember its size when it is new to us, and
 * lower what we know when it is smaller now (O_TRUNC, or a shrink we did not
 * see), so that its next growth counts again. Never raise it here: another
 * thread's write may already have moved i_size without its own hook having
 * run yet, and raising the known size would take that growth from it. Never
 * replace the map element either (an update of an existing LRU key swaps in
 * a new element), since a writer on another CPU may hold a pointer to it for
 * its compare-and-swap. */
static __always_inline void note_size_at_open(const struct dw_destination *dest)
{
	struct dw_file_key key = { .dev = dest->dev, .ino = dest->ino };
	__u64 size_now = dest->size;
	__u64 *known;

	if (dest->size < 0 || dest->ino == 0)
		return;
	known = bpf_map_lookup_elem(&dw_file_sizes, &key);
	if (!known) {
		bpf_map_update_elem(&dw_file_sizes, &key, &size_now, BPF_NOEXIST);
		return;
	}
	for (int attempt = 0; attempt < 4; attempt++) {
		__u64 old = *known;

		if (size_now >= old)
			return;
		if (__sync_val_compare_and_swap(known, old, size_now) == old)
			return;
	}
}

/* A size set outright (ftruncate, fallocate): store
 * it and return the increase over what was known (0 when nothing was). */
static __always_inline __u64 set_known_size(const struct dw_destination *dest)
{
	struct dw_file_key key = { .dev = dest->dev, .ino = dest->ino };
	__u64 size_now = dest->size;
	__u64 *known;
	__u64 old;

	if (dest->size < 0 || dest->ino == 0)
		return 0;
	known = bpf_map_lookup_elem(&dw_file_sizes, &key);
	if (!known) {
		bpf_map_update_elem(&dw_file_sizes, &key, &size_now, BPF_ANY);
		return 0;
	}
	old = __sync_lock_test_and_set(known, size_now);
	return size_now > old ? size_now - old : 0;
}

#endif /* DISKWATCH_FILE_GROWTH_BPF_H */
