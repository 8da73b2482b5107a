// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel side of ebpf-diskwatch: attribute every byte written to a regular
 * file or a block device to (process, cgroup v2, device), counted in place in
 * a per-CPU map, and report process lifecycle through a ring buffer.
 *
 * The same object carries one family of write hooks per kernel capability;
 * userspace probes the running kernel and keeps exactly one family loaded
 * (bpf_program__set_autoload), cheapest first:
 *
 *   fentry      fexit/vfs_write, fexit/vfs_writev   typed struct file, no fd lookup
 *               (+ fexit on the sendfile, splice, copy_file_range syscalls;
 *               fexit/vfs_fallocate; the tp_btf io_uring and page-dirtying hooks)
 *   tp_btf      tp_btf/sys_exit                     typed pt_regs; fd -> file
 *   raw_tp      raw_tp/sys_exit                     untyped: every read is a probe read
 *   tracepoint  syscalls/sys_{enter,exit}_*         needs tracefs; fd paired via a map
 *
 * Every write path, and the one hook that counts it (docs/attribution.md):
 *   write, pwrite64, writev, pwritev, pwritev2, sendfile, splice,
 *   copy_file_range (O_DIRECT or not)      the family's syscall-exit hook
 *   io_uring write/writev/splice           io_uring_complete (tp_btf / raw_tp)
 *   Linux AIO (io_submit)                  sys_exit of io_getevents: the reaped
 *                                          completions' results
 *   stores through a shared mmap           writeback_dirty_folio in the dirtying
 *                                          task, unless that task is inside one
 *                                          of the syscalls above (already counted)
 *                                          or is a kernel / io_uring worker thread
 *
 * Only the return value is counted (bytes actually written), never the
 * requested size. The syscall paths read the fd from the saved user pt_regs
 * at sys_exit: they still hold the arguments, so no enter/exit pairing map is
 * needed (pairing cost ~+950 ns per write in a measurement made before this
 * repository existed, which no file here reproduces).
 *
 * Syscall numbers and argument registers are x86-64's (the checked-in
 * vmlinux.h is x86-64 too).
 *
 * The object is linked from one file per job (cmake/BpfSkeleton.cmake runs
 * `bpftool gen object` over them):
 *   hooks_fentry.bpf.c, hooks_sys_exit.bpf.c (tp_btf and raw_tp),
 *   hooks_tracepoint.bpf.c           the four families' write hooks
 *   io_uring.bpf.c, mmap_stores.bpf.c  the paths every family shares
 *   lifecycle.bpf.c                  exec, exit and comm changes
 *   throttle_signals.bpf.c           SIGCONT to a throttled writer
 * with the shared helpers in headers: write_path.bpf.h (who, where, how much
 * it grew, account_write), aio.bpf.h, file_growth.bpf.h, rate_alarm.bpf.h,
 * throttle.bpf.h, throttle_allowance.bpf.h, and every map and setting in
 * maps.bpf.h. This file holds the license, once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";
