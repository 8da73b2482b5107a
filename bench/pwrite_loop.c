/*
 * 4 KiB pwrite() overwrite loop: the same page of one file, over and over, so
 * every call stays in the page cache and no disk I/O hides the monitor's cost.
 *
 *   dw-bench-pwrite FILE COUNT          COUNT writes after a short warm-up
 *   dw-bench-pwrite FILE --seconds S    as many writes as fit in S seconds
 *                                       (the "heaviest load" of scripts/bench)
 *
 * Prints one JSON object: writes, seconds, ns_per_write, writes_per_s.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bench_clock.h"

#define BLOCK 4096

int main(int argc, char **argv)
{
	static char block[BLOCK];
	long long count = 0, deadline = 0, writes = 0, start, elapsed;
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
	} else {
		count = bench_parse_count(argv[2], "COUNT");
		for (writes = 0; writes < count; writes++)
			if (pwrite(fd, block, BLOCK, 0) != BLOCK)
				bench_die("pwrite", argv[1]);
	}
	elapsed = bench_now_ns() - start;
	close(fd);
	printf("{\"writes\":%lld,\"seconds\":%.6f,\"ns_per_write\":%.2f,\"writes_per_s\":%.1f}\n", writes,
	       elapsed / 1e9, writes ? (double)elapsed / writes : 0.0, elapsed ? writes * 1e9 / elapsed : 0.0);
	return 0;
}
