/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Host-true time for user programs in a Kairos guest: the pvclock read of
 * the shared-info page that /dev/kairos maps read-only (kairos_uapi.h).
 * User space only (needs sched_getcpu() and __rdtsc()); the pvclock read
 * itself is kairos_pvclock.h's, the module's too.
 *
 * Define _GNU_SOURCE before the first #include of the program, as
 * sched_getcpu() requires.
 */
#ifndef _KAIROS_USER_CLOCK_H
#define _KAIROS_USER_CLOCK_H

#include <sched.h>
#include <stdint.h>
#include <x86intrin.h>

#include "kairos_abi.h"
#include "kairos_pvclock.h"

/*
 * The host's CLOCK_MONOTONIC in ns, from the record of the vCPU this thread
 * runs on. The version protocol of kairos_abi.h: retry while the host is
 * writing (odd version), when the version changed under the read, or when
 * the thread migrated to another vCPU, whose TSC may differ, in between.
 */
static inline uint64_t
kairos_user_clock_ns(const volatile struct kairos_shared_info *shared)
{
	const struct kairos_vcpu_time_info *time;
	uint32_t version;
	uint64_t ns;
	int cpu;

	do {
		cpu = sched_getcpu();
		if (cpu < 0 || cpu >= KAIROS_MAX_VCPUS)
			cpu = 0;
		/* The fields are read through volatile accesses. */
		time = (const struct kairos_vcpu_time_info *)&shared->time[cpu];
		version = kairos_pvclock_read_begin(time);
		ns = kairos_pvclock_ns_at(time, __rdtsc());
	} while (kairos_pvclock_read_retry(time, version) ||
		 cpu != sched_getcpu());
	return ns;
}

#endif /* _KAIROS_USER_CLOCK_H */
