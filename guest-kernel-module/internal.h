/* SPDX-License-Identifier: GPL-2.0 */
/*
 * State and functions shared by the files of kairos.ko.
 */
#ifndef _KAIROS_INTERNAL_H
#define _KAIROS_INTERNAL_H

#include <linux/atomic.h>
#include <linux/types.h>

#include "kairos_abi.h"

/*
 * The ABI version this module speaks. Always KAIROS_ABI_VERSION, except in
 * the test build that proves a mismatch is refused (Kbuild's
 * KAIROS_EXPECT_ABI_VERSION): that build changes what the module expects,
 * never the ABI itself.
 */
#ifndef KAIROS_EXPECTED_ABI_VERSION
#define KAIROS_EXPECTED_ABI_VERSION KAIROS_ABI_VERSION
#endif
#include "kairos.h"

/* What discovery found and what the module registered with the monitor. */
struct kairos_state {
	u32 abi_version;			/* from CPUID KAIROS_CPUID_INFO */
	u16 io_base;				/* first of KAIROS_PORT_COUNT ports */
	unsigned int gsi;			/* the upcall's ISA IRQ line (GSI) */
	unsigned int irq;			/* its Linux IRQ number */
	int upcall_vcpu;			/* APIC id the host was told, or -1 */
	struct kairos_shared_info *shared;	/* registered, page aligned */
	phys_addr_t shared_gpa;
};

extern struct kairos_state kairos;

/* main.c */
/*
 * kairos_command - send KAIROS_CMD_* @cmd with arguments @arg0 and @arg1 to
 * the monitor (commands are serialised) and return its KAIROS_OK or
 * negative KAIROS_E* status. Any context. Internal: other modules use the
 * timer and event APIs of kairos.h, never the transport.
 */
int kairos_command(u32 cmd, u32 arg0, u32 arg1);
int kairos_status_to_errno(int status);
u16 kairos_cpu_to_vcpu(unsigned int cpu);

/* clock.c */
int kairos_clock_init(void);
void kairos_clock_exit(void);

/* events.c */
void kairos_events_mask_all(void);
int kairos_events_init(void);
void kairos_events_exit(void);
ssize_t kairos_events_show(char *buf);

/* vmrpc.c: counters for /sys/kernel/kairos. */
struct kairos_timer_stats {
	atomic_long_t armed;		/* pending timers */
	atomic_long_t requests;		/* posted to the request ring */
	atomic_long_t expiries;		/* callbacks run for expiries */
	atomic_long_t stale;		/* expiries of superseded armings */
	atomic_long_t errors;		/* error completions but DEL races */
	atomic_long_t quota_refusals;	/* of them, KAIROS_TIMER_EQUOTA */
	atomic_long_t del_races;	/* DEL that crossed an expiry */
	atomic_long_t ring_full_waits;	/* producer waited for space */
	atomic_long_t bad_index_reports; /* host: our producer index was nonsense */
	atomic_long_t bad_op_reports;	/* host: a request had an unknown op */
	atomic_long_t bad_vcpu_reports;	/* host: a request named no vCPU of it */
	atomic_long_t work_done;	/* expiries whose consumer ran (or stale) */
	atomic_long_t done_reports;	/* KAIROS_PORT_DONE writes */
	atomic_long_t early_arrivals;	/* expiries before their deadline (waited) */
	atomic_long_t early_reposts;	/* more than KAIROS_MAX_ADVANCE_NS early */
};

extern struct kairos_timer_stats kairos_timer_stats;

int kairos_vmrpc_init(void);
void kairos_vmrpc_exit(void);
bool kairos_vmrpc_registered(void);
int kairos_vmrpc_inject(const char *what);

/* outsource.c: transparent outsourcing (kairos.outsource=) */
int kairos_outsource_init(void);
void kairos_outsource_exit(void);

/* device.c */
int kairos_device_init(void);
void kairos_device_exit(void);

/* sysfs.c */
int kairos_sysfs_init(void);
void kairos_sysfs_exit(void);

#endif /* _KAIROS_INTERNAL_H */
