/*
 * A logger's appends: `BLOCK_BYTES` at a time to a fresh file opened
 * O_APPEND (as a log writer opens eve.json), until TOTAL_BYTES. The file
 * grows with every write: the path a log writer takes, block allocation
 * included (ext4 delayed allocation).
 *
 *   dw-bench-append FILE BLOCK_BYTES TOTAL_BYTES
 *
 * Prints writes, seconds, and per write over the whole run (no fastest batch:
 * an append's cost varies along the file, as the page cache and the
 * filesystem's allocations fill, and a batch-minimum would keep only the
 * cheap part):
 *   cpu_ns_per_write  the writer's own CPU time (CLOCK_PROCESS_CPUTIME_ID):
 *                     what it pays, hooks included (they run in its context);
 *                     other processes and the kernel's writeback threads are
 *                     left out, so a busy machine disturbs it far less
 *   ns_per_write      wall time (CLOCK_MONOTONIC), what a plain timed loop
 *                     reports; equal to the CPU figure on a quiet machine
 *   mib_per_s
 */
#include <fcntl.h>
#include <unistd.h>

#include "bench_clock.h"

static long long cpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long long block_size, total, writes, start, cpu_start, elapsed, cpu;
	char *block;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE BLOCK_BYTES TOTAL_BYTES\n", argv[0]);
		return 2;
	}
	block_size = bench_parse_count(argv[2], "BLOCK_BYTES");
	total = bench_parse_count(argv[3], "TOTAL_BYTES");
	if (block_size == 0 || total < block_size) {
		fprintf(stderr, "need 0 < BLOCK_BYTES <= TOTAL_BYTES\n");
		return 2;
	}
	block = malloc(block_size);
	if (!block)
		bench_die("malloc", argv[2]);
	memset(block, 'a', block_size);
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0)
		bench_die("open", argv[1]);
	writes = total / block_size;
	start = bench_now_ns();
	cpu_start = cpu_now_ns();
	for (long long i = 0; i < writes; i++)
		if (write(fd, block, block_size) != block_size)
			bench_die("write", argv[1]);
	cpu = cpu_now_ns() - cpu_start;
	elapsed = bench_now_ns() - start;
	close(fd);
	free(block);
	printf("{\"writes\":%lld,\"seconds\":%.6f,\"ns_per_write\":%.2f,\"cpu_ns_per_write\":%.2f,"
	       "\"mib_per_s\":%.1f}\n",
	       writes, elapsed / 1e9, (double)elapsed / writes, (double)cpu / writes,
	       writes * block_size / 1048576.0 * 1e9 / elapsed);
	return 0;
}
