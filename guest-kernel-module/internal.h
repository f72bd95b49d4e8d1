/* SPDX-License-Identifier: GPL-2.0 */
/*
 * State and functions shared by the files of kairos.ko.
 */
#ifndef _KAIROS_INTERNAL_H
#define _KAIROS_INTERNAL_H

#include <linux/atomic.h>
#include <linux/sysfs.h>
#include <linux/types.h>

#include "kairos_abi.h"
#include "kairos_pvclock.h"

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

/*
 * What the module shows: each file owns its attributes. One value per file
 * in /sys/kernel/kairos (a group each); reports of many values and the
 * controls for tests in /sys/kernel/debug/kairos (sysfs.c assembles both).
 */
extern const struct attribute_group kairos_main_attr_group;	/* main.c */
extern const struct attribute_group kairos_clock_attr_group;	/* clock.c */
extern const struct attribute_group kairos_events_attr_group;	/* events.c */
extern const struct attribute_group kairos_vmrpc_attr_group;	/* vmrpc.c */

struct dentry;
void kairos_clock_debugfs_init(struct dentry *dir);
void kairos_events_debugfs_init(struct dentry *dir);
void kairos_vmrpc_debugfs_init(struct dentry *dir);

/* A write-only debugfs control: the text written goes to @apply. */
struct kairos_debugfs_control {
	const char *name;
	int (*apply)(const char *text);	/* 0 or a negative errno */
};

void kairos_debugfs_add_control(struct dentry *dir,
				const struct kairos_debugfs_control *control);

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

/* vmrpc.c */

int kairos_vmrpc_init(void);
void kairos_vmrpc_exit(void);
bool kairos_vmrpc_registered(void);

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
