// SPDX-License-Identifier: GPL-2.0
/*
 * kairos-devtest: exercises /dev/kairos (kairos_uapi.h) inside a guest with
 * kairos.ko loaded; prints "KAIROS-GUEST dev-KEY=VALUE" lines:
 *
 *   open             ok, or the errno
 *   mmap-ro          ok: the shared-info page maps read-only
 *   abi-version      read through the mapping (2)
 *   clock-agrees     /sys/kernel/kairos/clock_ns lies between two pvclock
 *                    reads through the mapping around it, within 1 ms (yes)
 *   mmap-rw          refused: a writable mapping is refused (EPERM)
 *   mprotect-rw      refused: the read-only mapping cannot become writable
 *   sleep            0 from KAIROS_IOC_SLEEP_UNTIL(now + 50 ms)
 *   sleep-early      yes if it returned before the deadline (no)
 *   sleep-past       0 from a deadline already past
 *   sleep-late-us    how late the 50 ms sleep returned
 *
 * Exit status 0 whatever the verdicts: the caller judges.
 *
 * "kairos-devtest sleeps COUNT INTERVAL_US" instead sleeps COUNT times,
 * each until INTERVAL_US after the previous wake-up, and prints one line
 * for kairos-window-selftest:
 *
 *   sleeps ok=N early=N failed=N cpu=C migrated=N max_late_us=N
 *
 * ok: returned 0 at or after the deadline; early: returned 0 before it;
 * failed: returned an error; cpu: where the first sleep started; migrated:
 * sleeps that returned on another CPU than they started on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kairos_abi.h"
#include "kairos_uapi.h"
#include "kairos_user_clock.h"

static void report(const char *key, const char *value)
{
	printf("KAIROS-GUEST dev-%s=%s\n", key, value);
	fflush(stdout);
}

/* Steps the host's re-anchoring may take back (ns of host time). */
#define CLOCK_SLACK_NS 1000000ull

static uint64_t sysfs_clock_ns(void)
{
	unsigned long long ns = 0;
	FILE *file = fopen("/sys/kernel/kairos/clock_ns", "r");

	if (file) {
		if (fscanf(file, "%llu", &ns) != 1)
			ns = 0;
		fclose(file);
	}
	return ns;
}

static const char *result(int ret)
{
	static char buf[32];

	if (ret == 0)
		return "0";
	snprintf(buf, sizeof(buf), "%s", strerror(errno));
	return buf;
}

static int run_sleeps(const char *count_arg, const char *interval_arg)
{
	const volatile struct kairos_shared_info *shared;
	unsigned long count = strtoul(count_arg, NULL, 0);
	uint64_t interval_ns = strtoull(interval_arg, NULL, 0) * 1000;
	unsigned long ok = 0, early = 0, failed = 0, migrated = 0, i;
	uint64_t deadline, after, late, max_late = 0;
	int fd, cpu, first_cpu = sched_getcpu();
	void *map;

	fd = open(KAIROS_DEVICE_PATH, O_RDONLY);
	if (fd < 0) {
		printf("sleeps open=%s\n", strerror(errno));
		return 1;
	}
	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		printf("sleeps mmap=%s\n", strerror(errno));
		return 1;
	}
	shared = map;
	for (i = 0; i < count; i++) {
		cpu = sched_getcpu();
		deadline = kairos_user_clock_ns(shared) + interval_ns;
		if (ioctl(fd, KAIROS_IOC_SLEEP_UNTIL, &deadline)) {
			failed++;
			continue;
		}
		after = kairos_user_clock_ns(shared);
		if (sched_getcpu() != cpu)
			migrated++;
		if (after < deadline) {
			early++;
			continue;
		}
		ok++;
		late = after - deadline;
		if (late > max_late)
			max_late = late;
	}
	printf("sleeps ok=%lu early=%lu failed=%lu cpu=%d migrated=%lu max_late_us=%llu\n",
	       ok, early, failed, first_cpu, migrated,
	       (unsigned long long)max_late / 1000);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const volatile struct kairos_shared_info *shared;
	uint64_t now, deadline, after, sysfs;
	char buf[64];
	void *map;
	int fd, ret;

	if (argc == 4 && !strcmp(argv[1], "sleeps"))
		return run_sleeps(argv[2], argv[3]);

	fd = open(KAIROS_DEVICE_PATH, O_RDONLY);
	if (fd < 0) {
		report("open", strerror(errno));
		return 0;
	}
	report("open", "ok");

	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		report("mmap-ro", strerror(errno));
		return 0;
	}
	report("mmap-ro", "ok");
	shared = map;
	snprintf(buf, sizeof(buf), "%u", shared->abi_version);
	report("abi-version", buf);
	/*
	 * Bracketed, not thresholded: a vCPU preempted between two reads on a
	 * busy host must not look like disagreement. The slack covers the
	 * kernel's monotonic guard holding a value a re-anchoring stepped back.
	 */
	now = kairos_user_clock_ns(shared);
	sysfs = sysfs_clock_ns();
	after = kairos_user_clock_ns(shared);
	report("clock-agrees", sysfs + CLOCK_SLACK_NS >= now &&
	       sysfs <= after + CLOCK_SLACK_NS ? "yes" : "no");

	report("mprotect-rw", mprotect(map, 4096, PROT_READ | PROT_WRITE) ?
	       "refused" : "allowed");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	report("mmap-rw", map == MAP_FAILED ? "refused" : "allowed");

	deadline = kairos_user_clock_ns(shared) + 50000000;
	ret = ioctl(fd, KAIROS_IOC_SLEEP_UNTIL, &deadline);
	after = kairos_user_clock_ns(shared);
	report("sleep", result(ret));
	report("sleep-early", after < deadline ? "yes" : "no");
	snprintf(buf, sizeof(buf), "%llu",
		 (unsigned long long)(after - deadline) / 1000);
	report("sleep-late-us", buf);

	deadline = 1;
	ret = ioctl(fd, KAIROS_IOC_SLEEP_UNTIL, &deadline);
	report("sleep-past", result(ret));
	close(fd);
	return 0;
}
