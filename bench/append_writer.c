/*
 * dd-style sequential writer: `dd if=/dev/zero of=FILE bs=BLOCK count=N`
 * without dd's read() of the input per block, so only the writes are timed.
 * The file is created (truncated) and grows with every write: the path a log
 * writer takes, block allocation included (ext4 delayed allocation).
 *
 *   dw-bench-append FILE BLOCK_BYTES TOTAL_BYTES
 *
 * Prints writes, seconds, ns_per_write (the fastest of BENCH_APPEND_BATCHES
 * batches of the run: the least disturbed by other processes and by
 * writeback), ns_per_write_mean and mib_per_s (over the whole run).
 */
#include <fcntl.h>
#include <unistd.h>

#include "bench_clock.h"

int main(int argc, char **argv)
{
	long long block_size, total, writes, batch, start, elapsed, fastest = -1;
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
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		bench_die("open", argv[1]);
	batch = total / block_size / BENCH_APPEND_BATCHES;
	if (batch == 0) {
		fprintf(stderr, "TOTAL_BYTES must be at least %d blocks\n", BENCH_APPEND_BATCHES);
		return 2;
	}
	writes = batch * BENCH_APPEND_BATCHES;
	start = bench_now_ns();
	for (int b = 0; b < BENCH_APPEND_BATCHES; b++) {
		long long batch_start = bench_now_ns(), took;

		for (long long i = 0; i < batch; i++)
			if (write(fd, block, block_size) != block_size)
				bench_die("write", argv[1]);
		took = bench_now_ns() - batch_start;
		if (fastest < 0 || took < fastest)
			fastest = took;
	}
	elapsed = bench_now_ns() - start;
	close(fd);
	free(block);
	printf("{\"writes\":%lld,\"seconds\":%.6f,\"ns_per_write\":%.2f,\"ns_per_write_mean\":%.2f,"
	       "\"mib_per_s\":%.1f}\n",
	       writes, elapsed / 1e9, (double)fastest / batch, (double)elapsed / writes,
	       writes * block_size / 1048576.0 * 1e9 / elapsed);
	return 0;
}
