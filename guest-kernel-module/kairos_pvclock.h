/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The one pvclock reader of a vCPU time record (struct kairos_vcpu_time_info,
 * kairos_abi.h), for the module (clock.c, sysfs.c) and for user programs
 * (kairos_user_clock.h): the version protocol as Linux's
 * pvclock_read_begin()/pvclock_read_retry() (arch/x86/include/asm/pvclock.h)
 * and the scaling of a TSC delta to ns.
 *
 *	do {
 *		version = kairos_pvclock_read_begin(time);
 *		... read the fields with KAIROS_PVCLOCK_READ() ...
 *	} while (kairos_pvclock_read_retry(time, version));
 */
#ifndef _KAIROS_PVCLOCK_H
#define _KAIROS_PVCLOCK_H

#include "kairos_abi.h"

#ifdef __KERNEL__
#include <linux/compiler.h>
#include <asm/barrier.h>
#define KAIROS_PVCLOCK_READ(field) READ_ONCE(field)
#define KAIROS_PVCLOCK_RMB() virt_rmb()
#else
#define KAIROS_PVCLOCK_READ(field) (*(const volatile __typeof__(field) *)&(field))
#define KAIROS_PVCLOCK_RMB() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

/* The version to compare against; odd (the host writing) never matches. */
static inline __u32
kairos_pvclock_read_begin(const struct kairos_vcpu_time_info *time)
{
	__u32 version = KAIROS_PVCLOCK_READ(time->version) & ~1u;

	KAIROS_PVCLOCK_RMB(); /* the version before the fields it guards */
	return version;
}

/* Nonzero if the fields read since read_begin() may be torn: read again. */
static inline int
kairos_pvclock_read_retry(const struct kairos_vcpu_time_info *time,
			  __u32 version)
{
	KAIROS_PVCLOCK_RMB(); /* the fields before the version check */
	return version != KAIROS_PVCLOCK_READ(time->version);
}

/* ns = ((shift < 0 ? delta >> -shift : delta << shift) * mul) >> 32 */
static inline __u64 kairos_pvclock_scale_delta(__u64 delta, __u32 mul,
					       __s8 shift)
{
	if (shift < 0)
		delta >>= -shift;
	else
		delta <<= shift;
	return (__u64)(((unsigned __int128)delta * mul) >> 32);
}

/* System time at guest TSC @tsc, from fields read inside the protocol. */
static inline __u64
kairos_pvclock_ns_at(const struct kairos_vcpu_time_info *time, __u64 tsc)
{
	return KAIROS_PVCLOCK_READ(time->system_time) +
	       kairos_pvclock_scale_delta(
		       tsc - KAIROS_PVCLOCK_READ(time->tsc_timestamp),
		       KAIROS_PVCLOCK_READ(time->tsc_to_system_mul),
		       KAIROS_PVCLOCK_READ(time->tsc_shift));
}

#endif /* _KAIROS_PVCLOCK_H */
