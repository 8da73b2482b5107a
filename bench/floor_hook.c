/*
 * The kernel's own floor for a syscall-exit write monitor: the EMPTY
 * tp_btf/sys_exit program of bpf/probe.bpf.c, attached alone. Whatever it
 * adds to a syscall is the dispatch cost no program body can go below
 * (tracepoint enabled on every syscall exit + the BPF trampoline into an
 * empty program); scripts/bench measures it beside the real monitors, so
 * "added by top" minus "added by the floor" is what the program body costs.
 *
 *   dw-bench-floor        attaches, prints "attached", waits for SIGINT/SIGTERM
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "probe.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int signo)
{
	(void)signo;
	stop = 1;
}

int main(void)
{
	struct probe_bpf *skel;
	struct bpf_program *prog, *floor = NULL;
	struct bpf_link *link;

	skel = probe_bpf__open();
	if (!skel) {
		fprintf(stderr, "dw-bench-floor: cannot open the probe object\n");
		return 1;
	}
	/* Chosen by attach point, not by name: only the empty sys_exit one. */
	bpf_object__for_each_program(prog, skel->obj) {
		int keep = !floor && strcmp(bpf_program__section_name(prog), "tp_btf/sys_exit") == 0;

		bpf_program__set_autoload(prog, keep);
		if (keep)
			floor = prog;
	}
	if (!floor || probe_bpf__load(skel)) {
		fprintf(stderr, "dw-bench-floor: no loadable tp_btf/sys_exit program in bpf/probe.bpf.c\n");
		probe_bpf__destroy(skel);
		return 1;
	}
	link = bpf_program__attach(floor);
	if (!link) {
		fprintf(stderr, "dw-bench-floor: attach tp_btf/sys_exit failed\n");
		probe_bpf__destroy(skel);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "attached %s (tp_btf/sys_exit, empty)\n", bpf_program__name(floor));
	while (!stop)
		pause();
	bpf_link__destroy(link);
	probe_bpf__destroy(skel);
	return 0;
}
