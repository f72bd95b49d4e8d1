// SPDX-License-Identifier: GPL-2.0
/*
 * rtc-interrupts: the guest half of test/integration/rtc-interrupts.sh.
 * Drives the CMOS RTC's interrupts through /dev/rtc0 (rtc-cmos) and prints
 * "KAIROS-GUEST rtc-KEY=VALUE" lines:
 *
 *   open              ok, or the errno
 *   uie-on            ok, or the errno of RTC_UIE_ON (EINVAL: no IRQ, and
 *                     util-linux hwclock falls back to busy polling)
 *   uie-ticks         update interrupts read (of 3), each waited for with
 *                     select() as hwclock does before reading the time
 *   uie-first-ms      from RTC_UIE_ON to the first interrupt
 *   uie-max-gap-ms    the longest time between two interrupts
 *   uie-steps         the RTC's seconds after each interrupt minus those
 *                     after the one before, comma separated (1,1)
 *   uie-flags         the low byte read() returned (RTC_IRQF | RTC_UF: 0x90)
 *   hwclock           the time read after the first interrupt, as
 *                     "hwclock --show" prints it (UTC)
 *   alarm-set         the RTC's time (s since the epoch) when the alarm was set
 *   alarm-at          the alarm time, ALARM_LEAD_S later (RTC_WKALM_SET)
 *   alarm-fired-rtc   the RTC's time read right after read() returned
 *   alarm-wait-ms     CLOCK_MONOTONIC from before reading alarm-set to then
 *   alarm-flags       the low byte read() returned (RTC_IRQF | RTC_AF: 0xa0)
 *   wakealarm-at      the time written to /sys/class/rtc/rtc0/wakealarm,
 *                     WAKEALARM_LEAD_S ahead (what rtcwake does)
 *   wakealarm-armed   what that file reads back (the same time)
 *   wakealarm-fired-rtc  the RTC's time when read() returned
 *   irq-line          /proc/interrupts' rtc0 line: "PIN:count", the IOAPIC
 *                     pin (8) and the interrupts counted on it
 *   irq-raw           that line as it is
 *
 * A wait that times out prints "timeout". The kernel log's lines from
 * rtc_cmos or about rtc0 come first as "rtc-dmesg: ...", for the reader.
 * Exit status 0 whatever the verdicts: the caller judges.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/rtc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define UIE_TICKS 3
#define ALARM_LEAD_S 3
#define WAKEALARM_LEAD_S 2
/* Generous: the emulated test machine is slow, and a timeout is a verdict. */
#define WAIT_TIMEOUT_S 15
#define SYSLOG_ACTION_READ_ALL 3
#define SYSLOG_ACTION_SIZE_BUFFER 10

static void report(const char *key, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static void report(const char *key, const char *format, ...)
{
	va_list args;

	printf("KAIROS-GUEST rtc-%s=", key);
	va_start(args, format);
	vprintf(format, args);
	va_end(args);
	printf("\n");
	fflush(stdout);
}

static int64_t monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The RTC's time in seconds since the epoch (it keeps UTC), or -1. */
static int64_t rtc_seconds(int fd, struct rtc_time *out)
{
	struct rtc_time rtc;
	struct tm tm = { 0 };

	if (ioctl(fd, RTC_RD_TIME, &rtc) < 0)
		return -1;
	if (out)
		*out = rtc;
	tm.tm_sec = rtc.tm_sec;
	tm.tm_min = rtc.tm_min;
	tm.tm_hour = rtc.tm_hour;
	tm.tm_mday = rtc.tm_mday;
	tm.tm_mon = rtc.tm_mon;
	tm.tm_year = rtc.tm_year;
	return (int64_t)timegm(&tm);
}

/*
 * One interrupt: select() with a timeout, as util-linux hwclock waits for
 * the clock tick, then read() its flags. 0 on success, -1 on a timeout or
 * an error.
 */
static int wait_interrupt(int fd, unsigned long *data)
{
	struct timeval timeout = { .tv_sec = WAIT_TIMEOUT_S };
	fd_set readable;
	int ready;

	FD_ZERO(&readable);
	FD_SET(fd, &readable);
	ready = select(fd + 1, &readable, NULL, NULL, &timeout);
	if (ready <= 0)
		return -1;
	if (read(fd, data, sizeof(*data)) != sizeof(*data))
		return -1;
	return 0;
}

static void update_interrupts(int fd)
{
	int64_t start, previous_ms, now_ms, max_gap = 0;
	int64_t previous_rtc = -1, rtc;
	char steps[64] = "";
	unsigned long data = 0;
	struct rtc_time first;
	int ticks = 0;

	start = monotonic_ms();
	if (ioctl(fd, RTC_UIE_ON, 0) < 0) {
		report("uie-on", "%s", strerrorname_np(errno));
		return;
	}
	report("uie-on", "ok");
	previous_ms = start;
	for (ticks = 0; ticks < UIE_TICKS; ticks++) {
		if (wait_interrupt(fd, &data) < 0)
			break;
		now_ms = monotonic_ms();
		rtc = rtc_seconds(fd, ticks == 0 ? &first : NULL);
		if (ticks == 0) {
			report("uie-first-ms", "%lld",
			       (long long)(now_ms - start));
			report("uie-flags", "0x%02lx", data & 0xff);
			report("hwclock", "%04d-%02d-%02d %02d:%02d:%02d",
			       first.tm_year + 1900, first.tm_mon + 1,
			       first.tm_mday, first.tm_hour, first.tm_min,
			       first.tm_sec);
		} else {
			if (now_ms - previous_ms > max_gap)
				max_gap = now_ms - previous_ms;
			snprintf(steps + strlen(steps),
				 sizeof(steps) - strlen(steps), "%s%lld",
				 ticks > 1 ? "," : "",
				 (long long)(rtc - previous_rtc));
		}
		previous_ms = now_ms;
		previous_rtc = rtc;
	}
	ioctl(fd, RTC_UIE_OFF, 0);
	report("uie-ticks", "%d", ticks);
	if (ticks < UIE_TICKS)
		report("uie-wait", "timeout");
	report("uie-max-gap-ms", "%lld", (long long)max_gap);
	report("uie-steps", "%s", steps);
}

static void alarm_interrupt(int fd)
{
	struct rtc_wkalrm alarm = { .enabled = 1 };
	int64_t start_ms, set, at, fired;
	unsigned long data = 0;
	struct tm tm;
	time_t when;

	start_ms = monotonic_ms();
	set = rtc_seconds(fd, NULL);
	if (set < 0) {
		report("alarm-set", "%s", strerrorname_np(errno));
		return;
	}
	at = set + ALARM_LEAD_S;
	when = (time_t)at;
	gmtime_r(&when, &tm);
	alarm.time.tm_sec = tm.tm_sec;
	alarm.time.tm_min = tm.tm_min;
	alarm.time.tm_hour = tm.tm_hour;
	alarm.time.tm_mday = tm.tm_mday;
	alarm.time.tm_mon = tm.tm_mon;
	alarm.time.tm_year = tm.tm_year;
	alarm.time.tm_wday = -1;
	alarm.time.tm_yday = -1;
	alarm.time.tm_isdst = -1;
	if (ioctl(fd, RTC_WKALM_SET, &alarm) < 0) {
		report("alarm-set", "%s", strerrorname_np(errno));
		return;
	}
	report("alarm-set", "%lld", (long long)set);
	report("alarm-at", "%lld", (long long)at);
	if (wait_interrupt(fd, &data) < 0) {
		report("alarm-fired-rtc", "timeout");
		return;
	}
	fired = rtc_seconds(fd, NULL);
	report("alarm-wait-ms", "%lld", (long long)(monotonic_ms() - start_ms));
	report("alarm-fired-rtc", "%lld", (long long)fired);
	report("alarm-flags", "0x%02lx", data & 0xff);
	ioctl(fd, RTC_AIE_OFF, 0);
}

/*
 * The alarm that rtcwake sets: seconds since the epoch (RTC time) written
 * to sysfs' wakealarm, then a read() of /dev/rtc0 until it fires.
 */
static void sysfs_wakealarm(int fd)
{
	const char *path = "/sys/class/rtc/rtc0/wakealarm";
	unsigned long data = 0;
	int64_t set, at, fired;
	char armed[32] = "";
	FILE *file;

	set = rtc_seconds(fd, NULL);
	at = set + WAKEALARM_LEAD_S;
	file = fopen(path, "w");
	if (!file || fprintf(file, "%lld", (long long)at) < 0 ||
	    fclose(file) != 0) {
		report("wakealarm-at", "%s", strerrorname_np(errno));
		return;
	}
	report("wakealarm-at", "%lld", (long long)at);
	file = fopen(path, "r");
	if (file) {
		if (fgets(armed, sizeof(armed), file))
			armed[strcspn(armed, "\n")] = '\0';
		fclose(file);
	}
	report("wakealarm-armed", "%s", armed);
	if (wait_interrupt(fd, &data) < 0) {
		report("wakealarm-fired-rtc", "timeout");
		return;
	}
	fired = rtc_seconds(fd, NULL);
	report("wakealarm-fired-rtc", "%lld", (long long)fired);
}

/*
 * /proc/interrupts' line for rtc0: "PIN:count", the IOAPIC pin from the
 * "8-edge" column (the first column is Linux's own number, which without a
 * legacy PIC is not the pin) and the count summed over the CPUs.
 */
static void interrupt_line(void)
{
	FILE *file = fopen("/proc/interrupts", "r");
	char line[1024];

	if (!file) {
		report("irq-line", "%s", strerrorname_np(errno));
		return;
	}
	while (fgets(line, sizeof(line), file)) {
		unsigned long long count, total = 0;
		char *cursor, *end, *word, *saved;
		long pin = -1;

		if (!strstr(line, "rtc0"))
			continue;
		line[strcspn(line, "\n")] = '\0';
		report("irq-raw", "%s", line);
		strtol(line, &cursor, 10);
		if (*cursor != ':')
			continue;
		cursor++;
		for (;;) {
			count = strtoull(cursor, &end, 10);
			if (end == cursor)
				break;
			total += count;
			cursor = end;
		}
		for (word = strtok_r(cursor, " \t", &saved); word;
		     word = strtok_r(NULL, " \t", &saved)) {
			long value = strtol(word, &end, 10);

			if (end != word && *end == '-')
				pin = value;
		}
		report("irq-line", "%ld:%llu", pin, total);
		fclose(file);
		return;
	}
	fclose(file);
	report("irq-line", "none");
}

/* The kernel log's lines from rtc-cmos and about rtc0, for the reader. */
static void kernel_log_lines(void)
{
	int size = klogctl(SYSLOG_ACTION_SIZE_BUFFER, NULL, 0);
	char *log, *line, *saved;
	int length;

	if (size <= 0)
		return;
	log = malloc((size_t)size + 1);
	if (!log)
		return;
	length = klogctl(SYSLOG_ACTION_READ_ALL, log, size);
	if (length > 0) {
		log[length] = '\0';
		for (line = strtok_r(log, "\n", &saved); line;
		     line = strtok_r(NULL, "\n", &saved))
			if (strstr(line, "rtc_cmos") || strstr(line, "rtc0"))
				printf("rtc-dmesg: %s\n", line);
	}
	free(log);
}

int main(void)
{
	int fd;

	kernel_log_lines();
	fd = open("/dev/rtc0", O_RDONLY);
	if (fd < 0) {
		report("open", "%s", strerrorname_np(errno));
		interrupt_line();
		return 0;
	}
	report("open", "ok");
	update_interrupts(fd);
	alarm_interrupt(fd);
	sysfs_wakealarm(fd);
	close(fd);
	interrupt_line();
	return 0;
}
