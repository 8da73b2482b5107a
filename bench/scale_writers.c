/*
 * Scale: many writer processes spread over many cgroup v2 children, all
 * released at once, each doing WRITES 4 KiB pwrite() overwrites of its own
 * file. Measures what a monitor costs when its map holds NPROC x NCGROUPS
 * distinct keys instead of one, and (WRITES = 0 with HOLD_SECONDS) what it
 * costs to have that many processes around that do not write.
 *
 *   dw-bench-scale CGROUP_PARENT NPROC NCGROUPS WRITES DIR HOLD_SECONDS [EARLY_WRITES]
 *
 * EARLY_WRITES (default 0) writes each child does before it says ready: with
 * WRITES = 0 and a hold, NPROC live processes that wrote once and now sit
 * idle, i.e. NPROC live keys in a monitor's map.
 *
 * Child i is born in CGROUP_PARENT/g<i % NCGROUPS>/ (made by the caller, who
 * also removes them) and writes DIR/w<i>. Born there by clone3(CLONE_INTO_CGROUP)
 * (Linux 5.7+), because joining by writing cgroup.procs is itself a write
 * to a file, which would make every "non-writer" a writer; older kernels fall
 * back to that write ("placement": "cgroup.procs" in the output). Prints {"ready":NPROC} once every child
 * is in place, holds HOLD_SECONDS, releases them, and prints processes,
 * cgroups, writes, seconds (release to last child reaped), ns_per_write.
 * If any child fails, all are released to exit and the exit status is 1.
 */
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_clock.h"

#define BLOCK 4096

static void join_cgroup(const char *parent, long long index)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/g%03lld/cgroup.procs", parent, index);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		bench_die("open", path);
	if (write(fd, "0", 1) != 1)
		bench_die("write", path);
	close(fd);
}

/* fork(), with the child born in the cgroup `cgroup_fd`; -1 with errno. */
static pid_t fork_into_cgroup(int cgroup_fd)
{
	struct clone_args args;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (unsigned)cgroup_fd;
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static int child(const char *cgroup_parent, long long index, long long ncgroups, long long writes,
		 long long early_writes, const char *dir, int ready_fd, int release_fd, int placed)
{
	static char block[BLOCK];
	char path[4096], go;
	int fd;

	if (!placed)
		join_cgroup(cgroup_parent, index % ncgroups);
	snprintf(path, sizeof(path), "%s/w%lld", dir, index);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		bench_die("open", path);
	memset(block, 's', sizeof(block));
	for (long long i = 0; i < early_writes; i++)
		if (pwrite(fd, block, BLOCK, 0) != BLOCK)
			bench_die("pwrite", path);
	if (write(ready_fd, "r", 1) != 1)
		bench_die("write", "ready pipe");
	close(ready_fd);
	/* One byte each means go; end of file means the run was aborted. */
	if (read(release_fd, &go, 1) != 1)
		_exit(3);
	for (long long i = 0; i < writes; i++)
		if (pwrite(fd, block, BLOCK, 0) != BLOCK)
			bench_die("pwrite", path);
	_exit(0);
}

int main(int argc, char **argv)
{
	long long nproc, ncgroups, writes, hold, early_writes = 0, ready = 0, start, elapsed;
	int ready_pipe[2], release_pipe[2], failed = 0, status, use_clone3 = 1;
	int *cgroup_fds;
	char byte, path[4096];
	char *go;

	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: %s CGROUP_PARENT NPROC NCGROUPS WRITES DIR HOLD_SECONDS [EARLY_WRITES]\n",
			argv[0]);
		return 2;
	}
	if (argc == 8)
		early_writes = bench_parse_count(argv[7], "EARLY_WRITES");
	nproc = bench_parse_count(argv[2], "NPROC");
	ncgroups = bench_parse_count(argv[3], "NCGROUPS");
	writes = bench_parse_count(argv[4], "WRITES");
	hold = bench_parse_count(argv[6], "HOLD_SECONDS");
	if (nproc == 0 || ncgroups == 0 || nproc > 4096) {
		fprintf(stderr, "need 0 < NPROC <= 4096 (one atomic pipe write releases them) and NCGROUPS > 0\n");
		return 2;
	}
	if (pipe(ready_pipe) || pipe(release_pipe))
		bench_die("pipe", "ready/release");
	cgroup_fds = calloc(ncgroups, sizeof(*cgroup_fds));
	if (!cgroup_fds)
		bench_die("calloc", "cgroup fds");
	for (long long g = 0; g < ncgroups; g++) {
		snprintf(path, sizeof(path), "%s/g%03lld", argv[1], g);
		cgroup_fds[g] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgroup_fds[g] < 0)
			bench_die("open", path);
	}
	fflush(stdout);

	for (long long i = 0; i < nproc; i++) {
		pid_t pid = use_clone3 ? fork_into_cgroup(cgroup_fds[i % ncgroups]) : -1;

		if (pid < 0 && use_clone3 && (errno == ENOSYS || errno == EINVAL || errno == E2BIG)) {
			use_clone3 = 0; /* kernel before 5.7: join by cgroup.procs */
		}
		if (pid < 0 && !use_clone3)
			pid = fork();
		if (pid < 0) {
			failed = 1;
			break;
		}
		if (pid == 0) {
			close(ready_pipe[0]);
			close(release_pipe[1]);
			return child(argv[1], i, ncgroups, writes, early_writes, argv[5], ready_pipe[1],
				     release_pipe[0], use_clone3);
		}
	}
	close(ready_pipe[1]);
	close(release_pipe[0]);
	/* Every child either says ready or dies (closing its end): the read
	 * ends with end of file once no child is left that could still say it. */
	while (ready < nproc && read(ready_pipe[0], &byte, 1) == 1)
		ready++;
	if (failed || ready < nproc) {
		fprintf(stderr, "dw-bench-scale: only %lld of %lld writers got ready\n", ready, nproc);
		close(release_pipe[1]);
		while (wait(NULL) > 0)
			;
		return 1;
	}
	printf("{\"ready\":%lld,\"placement\":\"%s\"}\n", ready, use_clone3 ? "clone3" : "cgroup.procs");
	fflush(stdout);
	if (hold)
		sleep((unsigned)hold);

	go = malloc(nproc);
	if (!go)
		bench_die("malloc", "release bytes");
	memset(go, 'g', nproc);
	start = bench_now_ns();
	if (write(release_pipe[1], go, nproc) != nproc)
		bench_die("write", "release pipe");
	close(release_pipe[1]);
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	elapsed = bench_now_ns() - start;
	free(go);
	printf("{\"processes\":%lld,\"cgroups\":%lld,\"placement\":\"%s\",\"writes\":%lld,\"seconds\":%.6f,"
	       "\"ns_per_write\":%.2f}\n",
	       nproc, ncgroups, use_clone3 ? "clone3" : "cgroup.procs", nproc * writes, elapsed / 1e9,
	       writes ? (double)elapsed / (double)(nproc * writes) : 0.0);
	return failed;
}
