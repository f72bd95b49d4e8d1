// SPDX-License-Identifier: GPL-2.0
/*
 * kairos-devtest: exercises /dev/kairos (kairos_uapi.h) inside a guest with
 * kairos.ko loaded; prints "KAIROS-GUEST dev-KEY=VALUE" lines:
 *
 *   open             ok, or the errno
 *   mmap-ro          ok: the shared-info page maps read-only
 *   abi-version      read through the mapping (1)
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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
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

int main(void)
{
	const volatile struct kairos_shared_info *shared;
	uint64_t now, deadline, after, sysfs;
	char buf[64];
	void *map;
	int fd, ret;

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
