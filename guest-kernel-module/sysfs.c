// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/kairos: what the module sees of the monitor, and controls
 * for tests.
 *
 *   abi_version       ABI version agreed with the host
 *   shared_info_gpa   guest-physical address of the shared-info page (hex)
 *   system_time_ns    vCPU 0's system time as last published by the host
 *   publish_count     how often the host published the time
 *   clock_ns          the host's CLOCK_MONOTONIC now, through the page
 *   stolen_ns         "cpuN NS" for each online CPU
 *   events            "PORT COUNT NAME" for each bound or delivered port
 *   raise_debug       (write) ask the host to raise KAIROS_EVENT_DEBUG
 *   mask, unmask      (write) a port number to mask or unmask
 *   upcall_vcpu       APIC id of the vCPU the upcall IRQ is routed to, as
 *                     told to the host; -1 if not steered (events.c)
 *   timer_ring        1 if the host took the VMRPC ring (outsourced timers)
 *   timers_armed, timer_requests, timer_expiries, timer_stale,
 *   timer_errors, timer_quota_refusals, timer_del_races,
 *   timer_ring_full_waits, timer_bad_index_reports, timer_bad_op_reports,
 *   timer_bad_vcpu_reports, timer_work_done, timer_done_reports,
 *   timer_early_arrivals, timer_early_reposts
 *                     outsourced-timer counters (vmrpc.c)
 *   vmrpc_inject      write "garbage N", "bad-producer", "no-done", "done",
 *                     "storm SECONDS" or "arm-far MS" (test_hooks=1 only;
 *                     vmrpc.c)
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <asm/barrier.h>

#include "internal.h"

static struct kobject *kairos_kobj;

static ssize_t abi_version_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", kairos.abi_version);
}

static ssize_t shared_info_gpa_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", (unsigned long long)kairos.shared_gpa);
}

static ssize_t system_time_ns_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	const struct kairos_vcpu_time_info *time = &kairos.shared->time[0];
	u64 system_time;
	u32 version;

	do {
		version = READ_ONCE(time->version) & ~1u;
		virt_rmb(); /* the version before the field it guards */
		system_time = READ_ONCE(time->system_time);
		virt_rmb(); /* the field before the version check */
	} while (version != READ_ONCE(time->version));
	return sysfs_emit(buf, "%llu\n", system_time);
}

static ssize_t publish_count_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", READ_ONCE(kairos.shared->publish_count));
}

static ssize_t clock_ns_show(struct kobject *kobj,
			     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", kairos_system_time_ns());
}

static ssize_t stolen_ns_show(struct kobject *kobj,
			      struct kobj_attribute *attr, char *buf)
{
	unsigned int cpu;
	int len = 0;

	for_each_online_cpu(cpu)
		len += sysfs_emit_at(buf, len, "cpu%u %llu\n", cpu,
				     READ_ONCE(kairos.shared->stolen_ns[cpu]));
	return len;
}

static ssize_t events_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return kairos_events_show(buf);
}

static ssize_t raise_debug_store(struct kobject *kobj,
				 struct kobj_attribute *attr, const char *buf,
				 size_t count)
{
	int status;

	status = kairos_command(KAIROS_CMD_RAISE_DEBUG, 0, 0);
	if (status != KAIROS_OK)
		return kairos_status_to_errno(status);
	return count;
}

static int kairos_parse_port(const char *buf, unsigned int *port)
{
	int ret;

	ret = kstrtouint(buf, 0, port);
	if (ret)
		return ret;
	return *port < KAIROS_EVENT_PORTS ? 0 : -EINVAL;
}

/* A port number written to @buf, handed to @apply; the store's result. */
static ssize_t kairos_port_store(const char *buf, size_t count,
				 void (*apply)(unsigned int port))
{
	unsigned int port;
	int ret;

	ret = kairos_parse_port(buf, &port);
	if (ret)
		return ret;
	apply(port);
	return count;
}

static ssize_t mask_store(struct kobject *kobj, struct kobj_attribute *attr,
			  const char *buf, size_t count)
{
	return kairos_port_store(buf, count, kairos_event_mask);
}

static ssize_t unmask_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	return kairos_port_store(buf, count, kairos_event_unmask);
}

static ssize_t vmrpc_inject_store(struct kobject *kobj,
				  struct kobj_attribute *attr, const char *buf,
				  size_t count)
{
	int ret = kairos_vmrpc_inject(buf);

	return ret ? ret : count;
}

static ssize_t upcall_vcpu_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", kairos.upcall_vcpu);
}

static ssize_t timer_ring_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", kairos_vmrpc_registered());
}

#define KAIROS_TIMER_STAT(name, field)					\
static ssize_t name##_show(struct kobject *kobj,			\
			   struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n",					\
			  atomic_long_read(&kairos_timer_stats.field));	\
}									\
static struct kobj_attribute name##_attr = __ATTR_RO(name)

KAIROS_TIMER_STAT(timers_armed, armed);
KAIROS_TIMER_STAT(timer_requests, requests);
KAIROS_TIMER_STAT(timer_expiries, expiries);
KAIROS_TIMER_STAT(timer_stale, stale);
KAIROS_TIMER_STAT(timer_errors, errors);
KAIROS_TIMER_STAT(timer_quota_refusals, quota_refusals);
KAIROS_TIMER_STAT(timer_del_races, del_races);
KAIROS_TIMER_STAT(timer_ring_full_waits, ring_full_waits);
KAIROS_TIMER_STAT(timer_bad_index_reports, bad_index_reports);
KAIROS_TIMER_STAT(timer_bad_op_reports, bad_op_reports);
KAIROS_TIMER_STAT(timer_bad_vcpu_reports, bad_vcpu_reports);
KAIROS_TIMER_STAT(timer_work_done, work_done);
KAIROS_TIMER_STAT(timer_done_reports, done_reports);
KAIROS_TIMER_STAT(timer_early_arrivals, early_arrivals);
KAIROS_TIMER_STAT(timer_early_reposts, early_reposts);

static struct kobj_attribute upcall_vcpu_attr = __ATTR_RO(upcall_vcpu);
static struct kobj_attribute timer_ring_attr = __ATTR_RO(timer_ring);
static struct kobj_attribute abi_version_attr = __ATTR_RO(abi_version);
static struct kobj_attribute shared_info_gpa_attr = __ATTR_RO(shared_info_gpa);
static struct kobj_attribute system_time_ns_attr = __ATTR_RO(system_time_ns);
static struct kobj_attribute publish_count_attr = __ATTR_RO(publish_count);
static struct kobj_attribute clock_ns_attr = __ATTR_RO(clock_ns);
static struct kobj_attribute stolen_ns_attr = __ATTR_RO(stolen_ns);
static struct kobj_attribute events_attr = __ATTR_RO(events);
static struct kobj_attribute raise_debug_attr = __ATTR_WO(raise_debug);
static struct kobj_attribute mask_attr = __ATTR_WO(mask);
static struct kobj_attribute unmask_attr = __ATTR_WO(unmask);
static struct kobj_attribute vmrpc_inject_attr = __ATTR_WO(vmrpc_inject);

static struct attribute *kairos_attrs[] = {
	&abi_version_attr.attr,
	&shared_info_gpa_attr.attr,
	&system_time_ns_attr.attr,
	&publish_count_attr.attr,
	&clock_ns_attr.attr,
	&stolen_ns_attr.attr,
	&events_attr.attr,
	&raise_debug_attr.attr,
	&mask_attr.attr,
	&unmask_attr.attr,
	&upcall_vcpu_attr.attr,
	&timer_ring_attr.attr,
	&timers_armed_attr.attr,
	&timer_requests_attr.attr,
	&timer_expiries_attr.attr,
	&timer_stale_attr.attr,
	&timer_errors_attr.attr,
	&timer_quota_refusals_attr.attr,
	&timer_del_races_attr.attr,
	&timer_ring_full_waits_attr.attr,
	&timer_bad_index_reports_attr.attr,
	&timer_bad_op_reports_attr.attr,
	&timer_bad_vcpu_reports_attr.attr,
	&timer_work_done_attr.attr,
	&timer_done_reports_attr.attr,
	&timer_early_arrivals_attr.attr,
	&timer_early_reposts_attr.attr,
	&vmrpc_inject_attr.attr,
	NULL,
};

static const struct attribute_group kairos_attr_group = {
	.attrs = kairos_attrs,
};

int kairos_sysfs_init(void)
{
	int ret;

	kairos_kobj = kobject_create_and_add("kairos", kernel_kobj);
	if (!kairos_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(kairos_kobj, &kairos_attr_group);
	if (ret) {
		pr_err("cannot create /sys/kernel/kairos: %d\n", ret);
		kobject_put(kairos_kobj);
		kairos_kobj = NULL;
	}
	return ret;
}

void kairos_sysfs_exit(void)
{
	sysfs_remove_group(kairos_kobj, &kairos_attr_group);
	kobject_put(kairos_kobj);
	kairos_kobj = NULL;
}
