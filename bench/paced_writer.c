/*
 * Throttle and bursty-detection workload: a writer that counts its own bytes.
 * Writes BLOCK bytes per write() to FILE, sequentially, wrapping back to
 * offset 0 every WRAP bytes (so the file stays small and the writes land in
 * the page cache, "as fast as the page cache takes them"), steady or in
 * bursts, paced or at full speed, until killed or for --seconds.
 *
 *   dw-bench-paced FILE [--block BYTES] [--pace BYTES_PER_S] [--burst BYTES]
 *                  [--pause-ms MS] [--wrap BYTES] [--seconds S] [--comm NAME]
 *                  [--cgroup DIR] [--report-ms MS] [--window-ms MS --budget BYTES]
 *                  [--count-fd FD]
 *
 * A unit is one write (steady) or --burst bytes written back to back. After
 * each unit the writer sleeps --pause-ms if given, else unit / --pace if
 * given, else not at all: "paced" means a producer with fixed work per unit
 * (it never catches up: time it spends stopped is not made up for), the
 * writer the test suite's throttle tests use.
 *
 * Prints JSON lines on stdout (line-buffered, a pipe: not a file, so these
 * writes are not counted by any monitor):
 *   {"start_ns":T}                      before the first write
 *   {"t_ns":T,"bytes":N}                N = bytes written by writes that had
 *                                       returned by T (CLOCK_MONOTONIC): after
 *                                       a write when --report-ms (100) has
 *                                       passed since the last line, and on
 *                                       both sides of every pause of 50 ms or
 *                                       more. Each line is an exact point of
 *                                       the writer's cumulative count.
 *   {"crossing_write_ns":T}             with --window-ms D --budget B: just
 *                                       before the write that, if it returns
 *                                       in full, takes the bytes within the
 *                                       last D over B (a kill can land before
 *                                       the writer sees that write return)
 *   {"crossed_ns":T,"bytes":N,"in_window":W}
 *                                       the first time the bytes written within
 *                                       the last D (by writes that returned
 *                                       in (T - D, T]) exceed B.
 *   {"end_ns":T,"bytes":N}              after --seconds
 *   {"sigterm_ns":T}                    on SIGTERM (a kill rule's first signal),
 *                                       then it exits 143: when the kill
 *                                       landed, on its own clock, however late
 *                                       the harness sees it die
 * --count-fd FD: a shared file (the harness's memfd) where the writer also
 * keeps {seq, t_ns, bytes} of its last returned write (three little-endian
 * u64 at offset 0, a seqlock: seq is odd while they change), so the harness
 * can read the count at any moment, also while the writer is stopped or
 * frozen and prints nothing. (A memfd page dirtied once: a monitor that
 * counts stores through shared mappings counts at most its 4 KiB, once.)
 * --cgroup DIR joins the cgroup v2 DIR (writes "0" to DIR/cgroup.procs)
 * before the first write; --comm NAME sets the process name.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench_clock.h"

#define MIB (1LL << 20)
#define PAUSE_REPORT_NS 50000000LL

struct mark {
	long long t, bytes;
};

struct shared_count {
	uint64_t seq, t_ns, bytes;
};

static struct shared_count *shared;

static void publish(long long t, long long bytes)
{
	uint64_t seq;

	if (!shared)
		return;
	seq = shared->seq;
	__atomic_store_n(&shared->seq, seq + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&shared->t_ns, (uint64_t)t, __ATOMIC_RELEASE);
	__atomic_store_n(&shared->bytes, (uint64_t)bytes, __ATOMIC_RELEASE);
	__atomic_store_n(&shared->seq, seq + 2, __ATOMIC_RELEASE);
}

/* The writes of the last --window-ms: a queue of (return time, cumulative
 * bytes), oldest first, in one array that is compacted or doubled when full. */
static struct mark *marks;
static size_t marks_head, marks_tail, marks_cap;
static long long window_base; /* cumulative bytes at the newest write at or before now - D */

static void marks_push(long long t, long long bytes)
{
	if (marks_tail == marks_cap) {
		size_t live = marks_tail - marks_head;

		if (!marks || live > marks_cap / 2) {
			marks_cap = marks_cap ? marks_cap * 2 : 4096;
			marks = realloc(marks, marks_cap * sizeof(*marks));
			if (!marks)
				bench_die("realloc", "marks");
		}
		memmove(marks, marks + marks_head, live * sizeof(*marks));
		marks_head = 0;
		marks_tail = live;
	}
	marks[marks_tail++] = (struct mark){t, bytes};
}

static void parse_options(int argc, char **argv, const char **file, long long *block, long long *pace,
			  long long *burst, long long *pause_ms, long long *wrap, long long *seconds,
			  const char **comm, const char **cgroup, long long *report_ms, long long *window_ms,
			  long long *budget, long long *count_fd)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *key = argv[i];

		if (strncmp(key, "--", 2) != 0) {
			if (*file) {
				fprintf(stderr, "one FILE only: '%s'\n", key);
				exit(2);
			}
			*file = key;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "%s needs a value\n", key);
			exit(2);
		}
		if (!strcmp(key, "--block"))
			*block = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--pace"))
			*pace = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--burst"))
			*burst = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--pause-ms"))
			*pause_ms = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--wrap"))
			*wrap = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--seconds"))
			*seconds = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--comm"))
			*comm = argv[++i];
		else if (!strcmp(key, "--cgroup"))
			*cgroup = argv[++i];
		else if (!strcmp(key, "--report-ms"))
			*report_ms = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--window-ms"))
			*window_ms = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--budget"))
			*budget = bench_parse_count(argv[++i], key);
		else if (!strcmp(key, "--count-fd"))
			*count_fd = bench_parse_count(argv[++i], key);
		else {
			fprintf(stderr, "unknown option %s\n", key);
			exit(2);
		}
	}
	if (!*file) {
		fprintf(stderr, "usage: %s FILE [--block BYTES] [--pace BYTES_PER_S] [--burst BYTES] [--pause-ms MS] "
				"[--wrap BYTES] [--seconds S] [--comm NAME] [--cgroup DIR] [--report-ms MS] "
				"[--window-ms MS --budget BYTES] [--count-fd FD]\n", argv[0]);
		exit(2);
	}
	if (*block <= 0 || *wrap < *block || *report_ms <= 0 || (*window_ms > 0) != (*budget > 0)) {
		fprintf(stderr, "need 0 < --block <= --wrap, --report-ms > 0, and --window-ms with --budget\n");
		exit(2);
	}
}

static void join_cgroup(const char *dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		bench_die("open", path);
	if (write(fd, "0", 1) != 1)
		bench_die("write", path);
	close(fd);
}

/* Async-signal-safe: clock_gettime, write and _exit only. */
static void on_sigterm(int sig)
{
	char line[64], digits[24];
	long long t = bench_now_ns();
	size_t n = 0, d = 0;

	(void)sig;
	memcpy(line, "{\"sigterm_ns\":", 14);
	n = 14;
	do
		digits[d++] = (char)('0' + t % 10);
	while ((t /= 10) > 0);
	while (d > 0)
		line[n++] = digits[--d];
	line[n++] = '}';
	line[n++] = '\n';
	if (write(STDOUT_FILENO, line, n) < 0)
		_exit(1);
	_exit(143);
}

static void sleep_ns(long long ns)
{
	struct timespec until;
	long long at = bench_now_ns() + ns;

	until.tv_sec = at / 1000000000LL;
	until.tv_nsec = at % 1000000000LL;
	/* Absolute, so a stop and continue (or any signal) cannot stretch it. */
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0)
		;
}

int main(int argc, char **argv)
{
	const char *file = NULL, *comm = NULL, *cgroup = NULL;
	long long block = 64 * 1024, pace = 0, burst = 0, pause_ms = -1, wrap = 64 * MIB, seconds = 0;
	long long report_ms = 100, window_ms = 0, budget = 0, count_fd = -1;
	long long unit, pause_ns, offset = 0, bytes = 0, start, last_report, end_at, crossed = 0, crossing_write = 0;
	char *buffer;
	int fd;

	parse_options(argc, argv, &file, &block, &pace, &burst, &pause_ms, &wrap, &seconds, &comm, &cgroup,
		      &report_ms, &window_ms, &budget, &count_fd);
	unit = burst > 0 ? burst : block;
	pause_ns = pause_ms >= 0 ? pause_ms * 1000000LL : pace > 0 ? unit * 1000000000LL / pace : 0;
	/* Never outlive the harness (a SIGKILLed run would leave a writer at
	 * full speed behind, its file system busy). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		bench_die("prctl", "PR_SET_PDEATHSIG");
	if (getppid() == 1)
		return 1;
	if (signal(SIGTERM, on_sigterm) == SIG_ERR)
		bench_die("signal", "SIGTERM");
	if (comm && prctl(PR_SET_NAME, comm, 0, 0, 0) != 0)
		bench_die("prctl", comm);
	if (cgroup)
		join_cgroup(cgroup);
	if (count_fd >= 0) {
		shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED, (int)count_fd, 0);
		if (shared == MAP_FAILED)
			bench_die("mmap", "--count-fd");
	}
	buffer = malloc(block);
	if (!buffer)
		bench_die("malloc", "block");
	memset(buffer, 'p', block);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		bench_die("open", file);
	setvbuf(stdout, NULL, _IOLBF, 0);
	start = bench_now_ns();
	last_report = start;
	end_at = seconds > 0 ? start + seconds * 1000000000LL : 0;
	publish(start, 0);
	printf("{\"start_ns\":%lld}\n", start);
	for (;;) {
		long long done = 0, now;

		/* Checked before a unit: --seconds covers whole units and their pauses. */
		if (end_at && bench_now_ns() >= end_at)
			break;
		while (done < unit) {
			long long length = unit - done < block ? unit - done : block;
			ssize_t wrote;

			if (offset + length > wrap)
				offset = 0;
			if (window_ms > 0 && !crossed && !crossing_write) {
				/* The window as it will be when this write returns (later,
				 * so perhaps a little less in it: checked again after). */
				long long t = bench_now_ns();
				long long base = window_base;
				size_t k = marks_head;

				while (k < marks_tail && marks[k].t <= t - window_ms * 1000000LL)
					base = marks[k++].bytes;
				if (bytes + length - base > budget) {
					crossing_write = t;
					printf("{\"crossing_write_ns\":%lld}\n", t);
				}
			}
			wrote = pwrite(fd, buffer, (size_t)length, offset);
			if (wrote <= 0)
				bench_die("pwrite", file);
			now = bench_now_ns();
			offset += wrote;
			done += wrote;
			bytes += wrote;
			publish(now, bytes);
			if (window_ms > 0 && !crossed) {
				marks_push(now, bytes);
				while (marks_head < marks_tail && marks[marks_head].t <= now - window_ms * 1000000LL)
					window_base = marks[marks_head++].bytes;
				if (bytes - window_base > budget) {
					crossed = now;
					printf("{\"crossed_ns\":%lld,\"bytes\":%lld,\"in_window\":%lld}\n", now, bytes,
					       bytes - window_base);
					free(marks);
					marks = NULL;
				}
			}
			if (now - last_report >= report_ms * 1000000LL) {
				printf("{\"t_ns\":%lld,\"bytes\":%lld}\n", now, bytes);
				last_report = now;
			}
		}
		now = bench_now_ns();
		if (pause_ns > 0) {
			/* Exact points on both sides of a long pause: nothing is written in it. */
			if (pause_ns >= PAUSE_REPORT_NS)
				printf("{\"t_ns\":%lld,\"bytes\":%lld}\n", now, bytes);
			sleep_ns(pause_ns);
			if (pause_ns >= PAUSE_REPORT_NS) {
				last_report = bench_now_ns();
				printf("{\"t_ns\":%lld,\"bytes\":%lld}\n", last_report, bytes);
			}
		}
	}
	printf("{\"end_ns\":%lld,\"bytes\":%lld}\n", bench_now_ns(), bytes);
	close(fd);
	free(buffer);
	return 0;
}
