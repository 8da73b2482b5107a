/* Shared by the benchmark workloads: one clock, one way to fail. */
#ifndef DW_BENCH_CLOCK_H
#define DW_BENCH_CLOCK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Loops are timed in this many batches and the fastest batch is reported:
 * batches of ~1-2 ms, shorter than a scheduler time slice, so that on a
 * loaded 2-CPU VM some of them run undisturbed. */
#define BENCH_BATCHES 100

/* CLOCK_MONOTONIC: the same clock Python's time.monotonic() reads, so the
 * harness can compare timestamps printed here with its own. */
static inline long long bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void bench_die(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s: %s\n", what, detail, strerror(errno));
	exit(1);
}

static inline long long bench_parse_count(const char *text, const char *name)
{
	char *end = NULL;
	long long value;

	errno = 0;
	value = strtoll(text, &end, 10);
	if (errno || !end || *end || value < 0) {
		fprintf(stderr, "bad %s: '%s' (want a non-negative integer)\n", name, text);
		exit(2);
	}
	return value;
}

#endif
