/*
 * A syscall that is not a write: what every other program on the machine pays
 * for a monitor hooked on syscall exit. getppid() is one of the cheapest
 * syscalls and glibc never caches it; syscall() makes sure it is a real one.
 *
 *   dw-bench-getppid COUNT      prints calls, seconds, ns_per_call (the
 *                               fastest of BENCH_BATCHES batches), ns_per_call_mean
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_clock.h"

int main(int argc, char **argv)
{
	long long count, batch, start, elapsed, fastest = -1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s COUNT\n", argv[0]);
		return 2;
	}
	batch = bench_parse_count(argv[1], "COUNT") / BENCH_BATCHES;
	if (batch == 0) {
		fprintf(stderr, "COUNT must be at least %d\n", BENCH_BATCHES);
		return 2;
	}
	for (int i = 0; i < 10000; i++)
		syscall(SYS_getppid);
	start = bench_now_ns();
	for (int b = 0; b < BENCH_BATCHES; b++) {
		long long batch_start = bench_now_ns(), took;

		for (long long i = 0; i < batch; i++)
			syscall(SYS_getppid);
		took = bench_now_ns() - batch_start;
		if (fastest < 0 || took < fastest)
			fastest = took;
	}
	elapsed = bench_now_ns() - start;
	count = batch * BENCH_BATCHES;
	printf("{\"calls\":%lld,\"seconds\":%.6f,\"ns_per_call\":%.2f,\"ns_per_call_mean\":%.2f}\n", count,
	       elapsed / 1e9, (double)fastest / batch, (double)elapsed / count);
	return 0;
}
