/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A throttle's allowance: a token bucket that refills at the throttle's rate,
 * banks at most burst_bytes, and goes below zero by the write that overdraws
 * it (bpf/throttle.bpf.h stops the writer then). Arithmetic only: no map, no
 * clock (the caller passes `now`), so that it runs under BPF_PROG_TEST_RUN
 * with any clock a test wants (tests/bpf/kernel_logic.bpf.c).
 *
 * Lock-free across CPUs. The refill interval is claimed by advancing last_ns
 * with a compare-and-swap, only ever forwards: two CPUs never refill the same
 * nanoseconds, even when the one with the later clock reading gets there
 * first (an exchange would have put last_ns back and refilled that gap twice).
 * Refill and charge go in by one atomic add.
 */
#ifndef DISKWATCH_THROTTLE_ALLOWANCE_BPF_H
#define DISKWATCH_THROTTLE_ALLOWANCE_BPF_H

#include "diskwatch/abi.h"

#define DW_NSEC_PER_USEC 1000ull
#define DW_USEC_PER_SEC_ 1000000ull
/* Refill at most 10 s at a time: with rates up to 1 TiB/s (the agent's
 * bound) elapsed_us x rate stays below 2^64. The bank is far smaller anyway. */
#define DW_MAX_THROTTLE_REFILL_US (10ull * DW_USEC_PER_SEC_)
/* Tries at claiming a refill interval against other CPUs; past them this
 * write claims none (it undercounts the refill by the nanoseconds another
 * CPU was racing for: never an overcount). */
#define DW_REFILL_CLAIM_TRIES 4

/* What the allowance refills by from `since_ns` to `now`, at the throttle's rate. */
static __always_inline __s64 dw_refill_since(const struct dw_throttle *throttle, __u64 since_ns, __u64 now)
{
	__u64 elapsed_us = now > since_ns ? (now - since_ns) / DW_NSEC_PER_USEC : 0;

	if (elapsed_us > DW_MAX_THROTTLE_REFILL_US)
		elapsed_us = DW_MAX_THROTTLE_REFILL_US;
	return (__s64)(elapsed_us * throttle->rate_bps / DW_USEC_PER_SEC_);
}

/* The allowance as a write now would find it, without claiming the refill. */
static __always_inline __s64 dw_allowance_now(const struct dw_throttle *throttle, __u64 now)
{
	return throttle->allowance + dw_refill_since(throttle, throttle->last_ns, now);
}

/* Claims the refill from last_ns up to `now`, moving last_ns forwards only. */
static __always_inline __s64 dw_claim_refill(struct dw_throttle *throttle, __u64 now)
{
	__u64 since = throttle->last_ns;

	for (int attempt = 0; attempt < DW_REFILL_CLAIM_TRIES; attempt++) {
		__u64 seen;

		if (since >= now)
			return 0; /* another CPU refilled up to a later reading */
		seen = __sync_val_compare_and_swap(&throttle->last_ns, since, now);
		if (seen == since)
			return dw_refill_since(throttle, since, now);
		since = seen;
	}
	return 0;
}

/* Charges `bytes` written at `now`; returns the allowance after it (< 0: the
 * writer owes bytes and is to be stopped). The bank is capped where the
 * refill would pass it: an idle spell buys at most burst_bytes. (A race here
 * only moves the cap by a write.) */
static __always_inline __s64 dw_throttle_account(struct dw_throttle *throttle, long bytes, __u64 now)
{
	__s64 refill = dw_claim_refill(throttle, now);
	__s64 before = __sync_fetch_and_add(&throttle->allowance, refill - bytes);
	__s64 after = before + refill - bytes;

	__sync_fetch_and_add(&throttle->charged_bytes, bytes);
	if (after + bytes > throttle->burst_bytes) {
		__sync_fetch_and_add(&throttle->allowance, throttle->burst_bytes - (after + bytes));
		after = throttle->burst_bytes - bytes;
	}
	return after;
}

#endif /* DISKWATCH_THROTTLE_ALLOWANCE_BPF_H */
