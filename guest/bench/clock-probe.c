/*
 * clock-probe: sends guest clock readings to the Kairos sample ports so the
 * host can measure this guest clock's drift against its own CLOCK_MONOTONIC
 * (see KAIROS_PORT_SAMPLE_* in kairos_abi.h). Runs as root in the guest.
 *
 * usage: clock-probe [--seconds N] [--interval-ms M] [--tag T] [--realtime]
 *
 * --realtime sends CLOCK_REALTIME instead of CLOCK_MONOTONIC, for the host
 * to compare the guest's wall clock with its own (realtime_offset_ms).
 */
#include <cpuid.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>

#include "abi/kairos_abi.h"

static int kairos_port_base(uint16_t *base)
{
	unsigned int eax, ebx, ecx, edx;
	char signature[13] = { 0 };

	__cpuid(KAIROS_CPUID_SIGNATURE, eax, ebx, ecx, edx);
	memcpy(signature, &ebx, 4);
	memcpy(signature + 4, &ecx, 4);
	memcpy(signature + 8, &edx, 4);
	if (strcmp(signature, KAIROS_SIGNATURE) != 0 || eax < KAIROS_CPUID_INFO)
		return -1;
	__cpuid(KAIROS_CPUID_INFO, eax, ebx, ecx, edx);
	*base = (uint16_t)ebx;
	return 0;
}

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long seconds = 30, interval_ms = 100, tag = 0;
	clockid_t clock = CLOCK_MONOTONIC;
	uint16_t base;
	long i, count;

	for (i = 1; i < argc; i += 2) {
		if (!strcmp(argv[i], "--realtime")) {
			clock = CLOCK_REALTIME;
			i--;
			continue;
		}
		if (i + 1 >= argc)
			break;
		if (!strcmp(argv[i], "--seconds"))
			seconds = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--interval-ms"))
			interval_ms = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--tag"))
			tag = strtol(argv[i + 1], NULL, 10);
		else
			break;
	}
	if (i < argc || seconds <= 0 || interval_ms <= 0 || tag < 0 ||
	    tag >= KAIROS_SAMPLE_TAGS) {
		fprintf(stderr, "usage: clock-probe [--seconds N] [--interval-ms M] [--tag 0..%d] [--realtime]\n",
			KAIROS_SAMPLE_TAGS - 1);
		return 2;
	}
	if (kairos_port_base(&base) != 0) {
		fprintf(stderr, "clock-probe: no Kairos CPUID signature (not under Kairos?)\n");
		return 1;
	}
	if (ioperm(base, KAIROS_PORT_COUNT, 1) != 0) {
		fprintf(stderr, "clock-probe: ioperm: %s (needs root)\n", strerror(errno));
		return 1;
	}
	count = seconds * 1000 / interval_ms;
	for (i = 0; i < count; i++) {
		uint64_t reading = now_ns(clock);
		struct timespec pause = { interval_ms / 1000, (interval_ms % 1000) * 1000000 };

		outl((uint32_t)reading, base + KAIROS_PORT_SAMPLE_LO);
		outl((uint32_t)(reading >> 32), base + KAIROS_PORT_SAMPLE_HI);
		outl((uint32_t)tag, base + KAIROS_PORT_SAMPLE_TAG);
		nanosleep(&pause, NULL);
	}
	printf("KAIROS-GUEST probe-tag%ld-samples=%ld\n", tag, count);
	return 0;
}
