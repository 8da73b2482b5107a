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
 *    creat, O_TRUNC already applied); raises it only when the opener is the
 *    file's only writer (note_size_at_open);
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
 *    write for a rewrite that ends exactly at the old end of file;
 *  - a write through a file opened O_APPEND grew the file by exactly the bytes
 *    it wrote (the kernel moves the end under the inode lock), so it needs no
 *    map access to say so: the logger's path (growth_of_append). The known
 *    size is kept for the file's other writers: raised (never claimed) at every
 *    append while another open file can write it (i_writecount > 1), and at
 *    every 64 KiB crossed while the appender is its only writer. A writer that
 *    opens it after the appender closed it brings the known size up to date;
 *    one that opens it while the appender still holds it open may count at
 *    most those last < 64 KiB again.
 */
#ifndef DISKWATCH_FILE_GROWTH_BPF_H
#define DISKWATCH_FILE_GROWTH_BPF_H

#include "maps.bpf.h"

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

/* A write of `bytes` through a file opened O_APPEND, with `writers` open
 * files able to write it (inode->i_writecount): it grew by exactly `bytes`.
 * On the logger's path (one writer) the known size is only raised every
 * 64 KiB; see the model above. */
#define DW_APPEND_SYNC_SHIFT 16

static __always_inline __u64 growth_of_append(const struct dw_destination *dest, long bytes, int writers)
{
	struct dw_file_key key = { .dev = dest->dev, .ino = dest->ino };
	__u64 size_now = dest->size;
	__u64 *known;

	if (dest->size < 0 || dest->ino == 0)
		return 0;
	if (writers <= 1 && (size_now >> DW_APPEND_SYNC_SHIFT) == ((size_now - bytes) >> DW_APPEND_SYNC_SHIFT))
		return bytes;
	known = bpf_map_lookup_elem(&dw_file_sizes, &key);
	if (!known) {
		bpf_map_update_elem(&dw_file_sizes, &key, &size_now, BPF_NOEXIST);
		return bytes;
	}
	for (int attempt = 0; attempt < 4; attempt++) {
		__u64 old = *known;

		if (size_now <= old || __sync_val_compare_and_swap(known, old, size_now) == old)
			break;
	}
	return bytes;
}

/* A file opened for writing, with `writers` open files now able to write it
 * (inode->i_writecount, this one included): remember its size when it is new
 * to us, and lower what we know when it is smaller now (O_TRUNC, or a shrink
 * we did not see), so that its next growth counts again. Raise it only when
 * this open is the file's only writer: then no other write can be in flight
 * (one that moved i_size before its own hook ran would lose its growth to a
 * raise here), and a known size that an appender left behind by up to 64 KiB
 * (growth_of_append) is brought up to date. Never replace the map element
 * (an update of an existing LRU key swaps in a new element), since a writer
 * on another CPU may hold a pointer to it for its compare-and-swap. */
static __always_inline void note_size_at_open(const struct dw_destination *dest, int writers)
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
	if (writers == 1) {
		__sync_lock_test_and_set(known, size_now);
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
