/*
 * 4 KiB pwrite() overwrite loop: the same page of one file, over and over, so
 * every call stays in the page cache and no disk I/O hides the monitor's cost.
 *
 *   dw-bench-pwrite FILE COUNT          COUNT writes after a short warm-up, in
 *                                       BENCH_BATCHES batches
 *   dw-bench-pwrite FILE --seconds S    as many writes as fit in S seconds
 *                                       (the "heaviest load" of scripts/bench)
 *
 * Prints one JSON object: writes, seconds, ns_per_write, writes_per_s, and
 * with COUNT ns_per_write_mean. ns_per_write is then the least disturbed
 * batch's: on a shared 2-CPU VM, other processes only ever add time to a
 * batch, so the fastest one is closest to what the syscall costs.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bench_clock.h"

#define BLOCK 4096

int main(int argc, char **argv)
{
	static char block[BLOCK];
	long long count, deadline, writes = 0, start, elapsed;
	int fd;

	if (argc != 3 && !(argc == 4 && strcmp(argv[2], "--seconds") == 0)) {
		fprintf(stderr, "usage: %s FILE COUNT | FILE --seconds S\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		bench_die("open", argv[1]);
	memset(block, 'w', sizeof(block));
	/* Warm-up: the page is in the cache and the file is allocated. */
	for (int i = 0; i < 1000; i++)
		if (pwrite(fd, block, BLOCK, 0) != BLOCK)
			bench_die("pwrite", argv[1]);

	start = bench_now_ns();
	if (argc == 4) {
		deadline = start + bench_parse_count(argv[3], "seconds") * 1000000000LL;
		/* Check the clock every 1024 writes: a clock read per write would
		 * add its own cost to what is measured. */
		do {
			for (int i = 0; i < 1024; i++)
				if (pwrite(fd, block, BLOCK, 0) != BLOCK)
					bench_die("pwrite", argv[1]);
			writes += 1024;
		} while (bench_now_ns() < deadline);
		elapsed = bench_now_ns() - start;
		printf("{\"writes\":%lld,\"seconds\":%.6f,\"ns_per_write\":%.2f,\"writes_per_s\":%.1f}\n",
		       writes, elapsed / 1e9, (double)elapsed / writes, writes * 1e9 / elapsed);
	} else {
		long long batch = bench_parse_count(argv[2], "COUNT") / BENCH_BATCHES, fastest = -1;

		if (batch == 0) {
			fprintf(stderr, "COUNT must be at least %d\n", BENCH_BATCHES);
			return 2;
		}
		for (int b = 0; b < BENCH_BATCHES; b++) {
			long long batch_start = bench_now_ns(), took;

			for (long long i = 0; i < batch; i++)
				if (pwrite(fd, block, BLOCK, 0) != BLOCK)
					bench_die("pwrite", argv[1]);
			took = bench_now_ns() - batch_start;
			if (fastest < 0 || took < fastest)
				fastest = took;
		}
		count = batch * BENCH_BATCHES;
		elapsed = bench_now_ns() - start;
		printf("{\"writes\":%lld,\"seconds\":%.6f,\"ns_per_write\":%.2f,\"ns_per_write_mean\":%.2f,"
		       "\"writes_per_s\":%.1f}\n",
		       count, elapsed / 1e9, (double)fastest / batch, (double)elapsed / count, count * 1e9 / elapsed);
	}
	close(fd);
	return 0;
}
