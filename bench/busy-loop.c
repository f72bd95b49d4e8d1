/*
 * busy-loop: one CPU hog of bench/timer-latency's host load that counts its
 * work, so the benchmark can say how much host throughput a VM mode costs.
 *
 * usage: busy-loop FILE
 *
 * Spins until SIGTERM or SIGINT, then writes one line to FILE and exits 0:
 *   iterations=N wall_ns=W cpu_ns=C
 * (loop iterations done, and the wall and CPU time the loop ran: from the
 * first iteration, so that the start of the process is not counted).
 * iterations / wall_ns is the loop's throughput; cpu_ns / wall_ns the share
 * of a CPU it got. Each iteration is the same fixed amount of integer work.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int signal_number)
{
	(void)signal_number;
	stop = 1;
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct sigaction action;
	uint64_t start, start_cpu, iterations = 0;
	/* Work per iteration, opaque to the compiler: a loop of 64
	 * dependent multiply-adds, so that reading `stop` is a small part. */
	volatile uint64_t sink = 1;
	uint64_t value;
	FILE *out;
	int i;

	if (argc != 2) {
		fprintf(stderr, "usage: busy-loop FILE\n");
		return 2;
	}
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_signal;
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	start = clock_ns(CLOCK_MONOTONIC);
	start_cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	while (!stop) {
		value = sink;
		for (i = 0; i < 64; i++)
			value = value * 6364136223846793005ull + 1442695040888963407ull;
		sink = value;
		iterations++;
	}
	out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	fprintf(out, "iterations=%llu wall_ns=%llu cpu_ns=%llu\n", (unsigned long long)iterations,
		(unsigned long long)(clock_ns(CLOCK_MONOTONIC) - start),
		(unsigned long long)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - start_cpu));
	return fclose(out) == 0 ? 0 : 1;
}
