/*
 * A syscall that is not a write: what every other program on the machine pays
 * for a monitor hooked on syscall exit. getppid() is one of the cheapest
 * syscalls and glibc never caches it; syscall() makes sure it is a real one.
 *
 *   dw-bench-getppid COUNT      prints calls, seconds, ns_per_call
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_clock.h"

int main(int argc, char **argv)
{
	long long count, start, elapsed;

	if (argc != 2) {
		fprintf(stderr, "usage: %s COUNT\n", argv[0]);
		return 2;
	}
	count = bench_parse_count(argv[1], "COUNT");
	for (int i = 0; i < 10000; i++)
		syscall(SYS_getppid);
	start = bench_now_ns();
	for (long long i = 0; i < count; i++)
		syscall(SYS_getppid);
	elapsed = bench_now_ns() - start;
	printf("{\"calls\":%lld,\"seconds\":%.6f,\"ns_per_call\":%.2f}\n", count, elapsed / 1e9,
	       count ? (double)elapsed / count : 0.0);
	return 0;
}
