/*
 * Detection latency: a runaway writer. Overwrites 1 MiB at offset 0 of FILE
 * (so it never fills the disk) as fast as it can until it is killed, and
 * prints the CLOCK_MONOTONIC time of its first write so the harness can
 * measure flood start -> action.
 *
 *   dw-bench-flood FILE
 */
#include <fcntl.h>
#include <unistd.h>

#include "bench_clock.h"

#define BLOCK (1 << 20)

int main(int argc, char **argv)
{
	char *block;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	block = malloc(BLOCK);
	if (!block)
		bench_die("malloc", "block");
	memset(block, 'f', BLOCK);
	fd = open(argv[1], O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		bench_die("open", argv[1]);
	printf("{\"start_ns\":%lld}\n", bench_now_ns());
	fflush(stdout);
	for (;;)
		if (pwrite(fd, block, BLOCK, 0) != BLOCK)
			bench_die("pwrite", argv[1]);
}
