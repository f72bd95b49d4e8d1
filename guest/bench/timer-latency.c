/*
 * timer-latency: periodic timer lateness, measured against host-true time
 * (bench/timer-latency runs it; issue 5, DESIGN.md section 6).
 *
 * usage: timer-latency --mode emulated|outsourced|host|roundtrip [--interval-us N]
 *                      [--count N] [--raw FILE|-] [--label L]
 *
 * Arms `count` timers, one every `interval` microseconds (absolute
 * deadlines on a fixed grid; a wake-up later than the next deadline skips
 * the grid points already past) and records for each the time the sleeper
 * ran again minus its deadline.
 *
 *   emulated    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) on the
 *               guest's own hrtimers (KVM's in-kernel LAPIC timer). The
 *               guest deadline is guest_now_mono + (host_deadline - host_now).
 *   outsourced  ioctl(KAIROS_IOC_SLEEP_UNTIL) on /dev/kairos: the host keeps
 *               the timer.
 *   host        clock_nanosleep and CLOCK_MONOTONIC of the machine it runs
 *               on: the anchor (the host's own lateness).
 *   roundtrip   KAIROS_IOC_SLEEP_UNTIL(now), back to back: the deadline has
 *               passed when the host reads the request, so each sample is
 *               one VMRPC round trip (request, doorbell or host polling,
 *               immediate expiry, event, interrupt, tasklet, callback,
 *               wake-up), in host-true time. --interval-us is ignored.
 *
 * In the guest modes "now" and the deadlines are host CLOCK_MONOTONIC, read
 * from the pvclock record of the /dev/kairos read-only mapping, so both
 * modes are measured with the same ruler. The process pins itself to CPU 0
 * and sets its timer slack to 1 ns (the default 50 us would dominate).
 *
 * Prints one line:
 *   KAIROS-BENCH mode=M interval_us=I samples=N p50_us=.. p99_us=..
 *                p999_us=.. max_us=.. missed=K mean_us=.. [steal_us=S]
 * (missed: wake-ups later than one interval; steal_us: CPU 0's steal time
 * over the run from /proc/stat, in a KVM guest the time its vCPU thread
 * waited on a host run queue, to 1/USER_HZ; left out where /proc/stat has
 * no steal column), plus with --raw the lateness
 * of every sample in ns, one per line ("-" writes them to stdout as
 * "KAIROS-RAW mode=M v v v ..." lines of 32 values).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "abi/kairos_abi.h"
#include "guest-kernel-module/kairos_uapi.h"
#include "guest-kernel-module/kairos_user_clock.h"

enum mode { MODE_EMULATED, MODE_OUTSOURCED, MODE_HOST, MODE_ROUNDTRIP };

static const volatile struct kairos_shared_info *shared;
static int kairos_fd = -1;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t pvclock_ns(void)
{
	return kairos_user_clock_ns(shared);
}

static uint64_t host_now(enum mode mode)
{
	return mode == MODE_HOST ? mono_ns() : pvclock_ns();
}

/* Sleeps until the host-time deadline; 0 or an errno. */
static int sleep_until(enum mode mode, uint64_t deadline)
{
	struct timespec ts;
	uint64_t target, now, mono;
	__u64 arg;
	int ret;

	switch (mode) {
	case MODE_OUTSOURCED:
	case MODE_ROUNDTRIP:
		arg = deadline;
		if (ioctl(kairos_fd, KAIROS_IOC_SLEEP_UNTIL, &arg) != 0)
			return errno;
		return 0;
	case MODE_EMULATED:
		now = pvclock_ns();
		mono = mono_ns();
		target = mono + (deadline > now ? deadline - now : 0);
		break;
	default:
		target = deadline;
		break;
	}
	ts.tv_sec = (time_t)(target / 1000000000ull);
	ts.tv_nsec = (long)(target % 1000000000ull);
	do
		ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	while (ret == EINTR);
	return ret;
}

/* CPU 0's steal time so far in us (/proc/stat "cpu0 user nice system idle
 * iowait irq softirq steal ...", in USER_HZ ticks), or -1. */
static long long steal_us(void)
{
	unsigned long long value[8];
	long ticks_per_s = sysconf(_SC_CLK_TCK);
	char line[256];
	FILE *file = fopen("/proc/stat", "r");
	long long result = -1;

	if (!file)
		return -1;
	while (fgets(line, sizeof(line), file)) {
		if (strncmp(line, "cpu0 ", 5))
			continue;
		if (sscanf(line + 5, "%llu %llu %llu %llu %llu %llu %llu %llu", &value[0], &value[1],
			   &value[2], &value[3], &value[4], &value[5], &value[6], &value[7]) == 8 &&
		    ticks_per_s > 0)
			result = (long long)(value[7] * 1000000ull / (unsigned long long)ticks_per_s);
		break;
	}
	fclose(file);
	return result;
}

static int compare(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double percentile_us(const int64_t *sorted, long n, double p)
{
	long index = (long)(p * (double)n + 0.999999) - 1;

	if (index < 0)
		index = 0;
	if (index >= n)
		index = n - 1;
	return (double)sorted[index] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr, "usage: timer-latency --mode emulated|outsourced|host|roundtrip [--interval-us N]"
			" [--count N] [--raw FILE|-] [--label L]\n");
}

int main(int argc, char **argv)
{
	const char *mode_name = NULL, *raw = NULL, *label = NULL;
	long interval_us = 1000, count = 1000, i, missed = 0;
	uint64_t interval, deadline, now;
	long long steal_before, steal_after;
	double sum = 0;
	enum mode mode;
	int64_t *samples, *sorted;
	cpu_set_t cpus;
	int ret;

	for (i = 1; i < argc; i += 2) {
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (!strcmp(argv[i], "--mode"))
			mode_name = argv[i + 1];
		else if (!strcmp(argv[i], "--interval-us"))
			interval_us = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--count"))
			count = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--raw"))
			raw = argv[i + 1];
		else if (!strcmp(argv[i], "--label"))
			label = argv[i + 1];
		else {
			usage();
			return 2;
		}
	}
	if (!mode_name || interval_us <= 0 || count <= 0 || count > 10000000) {
		usage();
		return 2;
	}
	if (!strcmp(mode_name, "emulated"))
		mode = MODE_EMULATED;
	else if (!strcmp(mode_name, "outsourced"))
		mode = MODE_OUTSOURCED;
	else if (!strcmp(mode_name, "host"))
		mode = MODE_HOST;
	else if (!strcmp(mode_name, "roundtrip"))
		mode = MODE_ROUNDTRIP;
	else {
		usage();
		return 2;
	}
	if (!label)
		label = mode_name;

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus) != 0)
		fprintf(stderr, "timer-latency: sched_setaffinity(CPU 0): %s\n", strerror(errno));

	if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) != 0)
		fprintf(stderr, "timer-latency: PR_SET_TIMERSLACK: %s\n", strerror(errno));

	if (mode != MODE_HOST) {
		void *map;

		kairos_fd = open(KAIROS_DEVICE_PATH, O_RDONLY);
		if (kairos_fd < 0) {
			fprintf(stderr, "timer-latency: %s: %s (kairos.ko loaded?)\n",
				KAIROS_DEVICE_PATH, strerror(errno));
			return 1;
		}
		map = mmap(NULL, KAIROS_PAGE_SIZE, PROT_READ, MAP_SHARED, kairos_fd, 0);
		if (map == MAP_FAILED) {
			fprintf(stderr, "timer-latency: mmap %s: %s\n", KAIROS_DEVICE_PATH,
				strerror(errno));
			return 1;
		}
		shared = map;
	}

	samples = calloc((size_t)count, sizeof(*samples));
	sorted = calloc((size_t)count, sizeof(*sorted));
	if (!samples || !sorted) {
		fprintf(stderr, "timer-latency: out of memory\n");
		return 1;
	}
	interval = (uint64_t)interval_us * 1000;
	steal_before = steal_us();
	deadline = host_now(mode) + interval;
	for (i = 0; i < count; i++) {
		/* Due at once: what is measured is the round trip itself. */
		if (mode == MODE_ROUNDTRIP)
			deadline = host_now(mode);
		ret = sleep_until(mode, deadline);
		now = host_now(mode);
		if (ret != 0) {
			fprintf(stderr, "timer-latency: %s sleep failed: %s\n", mode_name,
				strerror(ret));
			return 1;
		}
		samples[i] = (int64_t)(now - deadline);
		if (mode != MODE_ROUNDTRIP && samples[i] > (int64_t)interval)
			missed++;
		deadline += interval;
		while (deadline <= now)
			deadline += interval;
	}
	steal_after = steal_us();
	for (i = 0; i < count; i++)
		sum += (double)samples[i];

	memcpy(sorted, samples, (size_t)count * sizeof(*samples));
	qsort(sorted, (size_t)count, sizeof(*sorted), compare);
	printf("KAIROS-BENCH mode=%s interval_us=%ld samples=%ld p50_us=%.1f p99_us=%.1f"
	       " p999_us=%.1f max_us=%.1f missed=%ld",
	       label, interval_us, count, percentile_us(sorted, count, 0.5),
	       percentile_us(sorted, count, 0.99), percentile_us(sorted, count, 0.999),
	       (double)sorted[count - 1] / 1000.0, missed);
	printf(" mean_us=%.1f", sum / (double)count / 1000.0);
	if (steal_before >= 0 && steal_after >= steal_before)
		printf(" steal_us=%lld", steal_after - steal_before);
	printf("\n");
	if (raw && !strcmp(raw, "-")) {
		for (i = 0; i < count; i++) {
			if (i % 32 == 0)
				printf("%sKAIROS-RAW mode=%s", i ? "\n" : "", label);
			printf(" %lld", (long long)samples[i]);
		}
		printf("\n");
	} else if (raw) {
		FILE *file = fopen(raw, "w");

		if (!file) {
			fprintf(stderr, "timer-latency: %s: %s\n", raw, strerror(errno));
			return 1;
		}
		for (i = 0; i < count; i++)
			fprintf(file, "%lld\n", (long long)samples[i]);
		fclose(file);
	}
	fflush(stdout);
	free(samples);
	free(sorted);
	return 0;
}
