// SPDX-License-Identifier: GPL-2.0
/*
 * The "kairos" clocksource: the host's CLOCK_MONOTONIC, read from
 * the per-vCPU pvclock records of the shared-info page (the layout and
 * version protocol of Linux arch/x86/include/asm/pvclock.h).
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/atomic.h>
#include <linux/clocksource.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/kobject.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/preempt.h>
#include <linux/seq_file.h>
#include <linux/smp.h>
#include <linux/sysfs.h>
#include <linux/time64.h>
#include <linux/timekeeping.h>
#include <asm/barrier.h>
#include <asm/msr.h>

#include "internal.h"

/* Above tsc (300), below kvm-clock (400): current when kvm-clock is off. */
static unsigned int rating = 380;
module_param(rating, uint, 0444);
MODULE_PARM_DESC(rating, "Rating of the kairos clocksource (default 380)");

static bool set_wallclock = true;
module_param(set_wallclock, bool, 0444);
MODULE_PARM_DESC(set_wallclock,
		 "Set the guest's realtime clock from the host's at load (default 1)");

/*
 * The largest value read so far: without KAIROS_TIME_TSC_STABLE the vCPUs'
 * records may disagree a little, and time must not go backwards when a
 * reader moves between them (as Linux pvclock_clocksource_read() does).
 */
static atomic64_t kairos_last_ns = ATOMIC64_INIT(0);

static notrace u64 kairos_time_read(const struct kairos_vcpu_time_info *time)
{
	u32 version;
	u64 ns, last;
	u8 flags;

	do {
		version = kairos_pvclock_read_begin(time);
		ns = kairos_pvclock_ns_at(time, rdtsc_ordered());
		flags = READ_ONCE(time->flags);
	} while (unlikely(kairos_pvclock_read_retry(time, version)));

	if (flags & KAIROS_TIME_TSC_STABLE)
		return ns;

	last = atomic64_read(&kairos_last_ns);
	do {
		if (ns <= last)
			return last;
	} while (!atomic64_try_cmpxchg(&kairos_last_ns, &last, ns));
	return ns;
}

notrace u64 kairos_system_time_ns(void)
{
	u64 ns;

	preempt_disable_notrace();
	ns = kairos_time_read(&kairos.shared->time[smp_processor_id()]);
	preempt_enable_notrace();
	return ns;
}
EXPORT_SYMBOL_GPL(kairos_system_time_ns);

static ssize_t system_time_ns_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	const struct kairos_vcpu_time_info *time = &kairos.shared->time[0];
	u64 system_time;
	u32 version;

	do {
		version = kairos_pvclock_read_begin(time);
		system_time = READ_ONCE(time->system_time);
	} while (kairos_pvclock_read_retry(time, version));
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

static struct kobj_attribute system_time_ns_attr = __ATTR_RO(system_time_ns);
static struct kobj_attribute publish_count_attr = __ATTR_RO(publish_count);
static struct kobj_attribute clock_ns_attr = __ATTR_RO(clock_ns);

static struct attribute *kairos_clock_attrs[] = {
	&system_time_ns_attr.attr,
	&publish_count_attr.attr,
	&clock_ns_attr.attr,
	NULL,
};

const struct attribute_group kairos_clock_attr_group = {
	.attrs = kairos_clock_attrs,
};

/* Stolen time per online CPU, as the host published it. */
static int kairos_stolen_ns_show(struct seq_file *m, void *unused)
{
	unsigned int cpu;

	for_each_online_cpu(cpu)
		seq_printf(m, "cpu%u %llu\n", cpu,
			   READ_ONCE(kairos.shared->stolen_ns[cpu]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kairos_stolen_ns);

void kairos_clock_debugfs_init(struct dentry *dir)
{
	debugfs_create_file("stolen_ns", 0444, dir, NULL,
			    &kairos_stolen_ns_fops);
}

static notrace u64 kairos_clocksource_read(struct clocksource *cs)
{
	return kairos_system_time_ns();
}

/*
 * The core holds a reference on .owner while the clocksource is current, so
 * the module cannot be unloaded from under the timekeeper: switch first
 * (write "kairos" to .../clocksource0/unbind_clocksource). The core cannot
 * always switch away: in one-shot tick mode only a high-resolution
 * clocksource may replace it, and jiffies is not one.
 */
static struct clocksource kairos_clocksource = {
	.name = "kairos",
	.owner = THIS_MODULE,
	.read = kairos_clocksource_read,
	.mask = CLOCKSOURCE_MASK(64),
	.flags = CLOCK_SOURCE_IS_CONTINUOUS,
};

/* CLOCK_REALTIME at system time zero, under the wc_version protocol. */
static struct timespec64 kairos_wall_clock_base(void)
{
	const struct kairos_shared_info *shared = kairos.shared;
	struct timespec64 base;
	u32 version;

	do {
		version = READ_ONCE(shared->wc_version) & ~1u;
		virt_rmb(); /* the version before the fields it guards */
		base.tv_sec = READ_ONCE(shared->wc_sec);
		base.tv_nsec = READ_ONCE(shared->wc_nsec);
		virt_rmb(); /* the fields before the version check */
	} while (unlikely(version != READ_ONCE(shared->wc_version)));
	return base;
}

static void kairos_set_wall_clock(void)
{
	struct timespec64 now, base;
	int ret;

	base = kairos_wall_clock_base();
	if (!base.tv_sec && !base.tv_nsec) {
		pr_warn("host published no wall clock; realtime left as it is\n");
		return;
	}
	if (base.tv_nsec >= NSEC_PER_SEC) {
		pr_warn("host wall clock has %ld ns; realtime left as it is\n",
			base.tv_nsec);
		return;
	}
	now = timespec64_add(base, ns_to_timespec64(kairos_system_time_ns()));
	ret = do_settimeofday64(&now);
	if (ret)
		pr_warn("cannot set realtime to %lld.%09ld: %d\n",
			(long long)now.tv_sec, now.tv_nsec, ret);
}

/* Every CPU that can run needs its record before the clock is usable. */
static int kairos_check_time_records(void)
{
	const struct kairos_shared_info *shared = kairos.shared;
	unsigned int cpu;

	if (nr_cpu_ids > KAIROS_MAX_VCPUS) {
		pr_err("%u possible CPUs, the shared page has records for %u\n",
		       nr_cpu_ids, KAIROS_MAX_VCPUS);
		return -ENODEV;
	}
	for_each_online_cpu(cpu) {
		if (!READ_ONCE(shared->time[cpu].tsc_to_system_mul)) {
			pr_err("host published no time for CPU %u (it counts %u vCPUs)\n",
			       cpu, READ_ONCE(shared->vcpu_count));
			return -ENODEV;
		}
	}
	return 0;
}

int kairos_clock_init(void)
{
	int ret;

	ret = kairos_check_time_records();
	if (ret)
		return ret;

	kairos_clocksource.rating = rating;
	ret = clocksource_register_hz(&kairos_clocksource, NSEC_PER_SEC);
	if (ret) {
		pr_err("cannot register the clocksource: %d\n", ret);
		return ret;
	}
	if (set_wallclock)
		kairos_set_wall_clock();
	return 0;
}

void kairos_clock_exit(void)
{
	int ret;

	/* Not current (that pins the module), so nothing can refuse this. */
	ret = clocksource_unregister(&kairos_clocksource);
	WARN(ret, "kairos: clocksource still in use: %d\n", ret);
}
