/* SPDX-License-Identifier: GPL-2.0 */
/*
 * State and functions shared by the files of kairos.ko.
 */
#ifndef _KAIROS_INTERNAL_H
#define _KAIROS_INTERNAL_H

#include <linux/types.h>

#include "kairos_abi.h"
#include "kairos.h"

/* What discovery found and what the module registered with the monitor. */
struct kairos_state {
	u32 abi_version;			/* from CPUID KAIROS_CPUID_INFO */
	u16 io_base;				/* first of KAIROS_PORT_COUNT ports */
	unsigned int gsi;			/* the upcall's ISA IRQ line (GSI) */
	unsigned int irq;			/* its Linux IRQ number */
	struct kairos_shared_info *shared;	/* registered, page aligned */
	phys_addr_t shared_gpa;
};

extern struct kairos_state kairos;

/* main.c */
int kairos_status_to_errno(int status);

/* clock.c */
int kairos_clock_init(void);
void kairos_clock_exit(void);

/* events.c */
void kairos_events_mask_all(void);
int kairos_events_init(void);
void kairos_events_exit(void);
ssize_t kairos_events_show(char *buf);

/* sysfs.c */
int kairos_sysfs_init(void);
void kairos_sysfs_exit(void);

#endif /* _KAIROS_INTERNAL_H */
