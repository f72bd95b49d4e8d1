/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * /dev/kairos, for user programs (kairos.ko, device.c).
 *
 * ioctl(fd, KAIROS_IOC_SLEEP_UNTIL, &deadline): sleep until the __u64
 * absolute deadline, in nanoseconds of kairos system time (the host's
 * CLOCK_MONOTONIC, as /sys/kernel/kairos/clock_ns shows it), on a timer
 * kept by the host. 0 at or after the deadline; -1 with errno EINTR if a
 * signal came first, ENOSPC if the host refused the timer (quota),
 * EOPNOTSUPP if the host has no timer ring.
 *
 * mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0): the shared-info page
 * (struct kairos_shared_info, kairos_abi.h), read-only, to read the host's
 * time from the pvclock records without a system call.
 */
#ifndef _KAIROS_UAPI_H
#define _KAIROS_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KAIROS_DEVICE_PATH "/dev/kairos"
#define KAIROS_IOC_MAGIC 0xb7
#define KAIROS_IOC_SLEEP_UNTIL _IOW(KAIROS_IOC_MAGIC, 1, __u64)

#endif /* _KAIROS_UAPI_H */
