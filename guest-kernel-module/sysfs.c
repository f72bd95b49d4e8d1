// SPDX-License-Identifier: GPL-2.0
/*
 * What the module shows, assembled from the files that own it.
 *
 * /sys/kernel/kairos, one value per file:
 *   abi_version, shared_info_gpa                           (main.c)
 *   system_time_ns, publish_count, clock_ns                (clock.c)
 *   upcall_vcpu                                            (events.c)
 *   timer_ring, timers_armed, timer_*                      (vmrpc.c)
 *
 * /sys/kernel/debug/kairos, reports of many values and controls for tests:
 *   stolen_ns        "cpuN NS" for each online CPU          (clock.c)
 *   events           "PORT COUNT NAME" for each bound or delivered port,
 *                    and the controls raise_debug, mask, unmask (events.c)
 *   vmrpc_inject     "garbage N", "bad-producer", "no-done", "done",
 *                    "storm SECONDS" or "arm-far MS" (test_hooks=1 only;
 *                    vmrpc.c)
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include "internal.h"

/* The longest control text: "storm SECONDS" and the like. */
#define KAIROS_CONTROL_MAX 64

static struct kobject *kairos_kobj;
static struct dentry *kairos_debugfs;

static const struct attribute_group *kairos_attr_groups[] = {
	&kairos_main_attr_group,
	&kairos_clock_attr_group,
	&kairos_events_attr_group,
	&kairos_vmrpc_attr_group,
	NULL,
};

static ssize_t kairos_control_write(struct file *file, const char __user *ubuf,
				    size_t count, loff_t *ppos)
{
	const struct kairos_debugfs_control *control = file->private_data;
	char text[KAIROS_CONTROL_MAX];
	int ret;

	if (count >= sizeof(text))
		return -EINVAL;
	if (copy_from_user(text, ubuf, count))
		return -EFAULT;
	text[count] = '\0';
	ret = control->apply(text);
	return ret ? ret : count;
}

static const struct file_operations kairos_control_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kairos_control_write,
	.llseek = noop_llseek,
};

void kairos_debugfs_add_control(struct dentry *dir,
				const struct kairos_debugfs_control *control)
{
	debugfs_create_file(control->name, 0200, dir, (void *)control,
			    &kairos_control_fops);
}

int kairos_sysfs_init(void)
{
	int ret;

	kairos_kobj = kobject_create_and_add("kairos", kernel_kobj);
	if (!kairos_kobj)
		return -ENOMEM;
	ret = sysfs_create_groups(kairos_kobj, kairos_attr_groups);
	if (ret) {
		pr_err("cannot create /sys/kernel/kairos: %d\n", ret);
		kobject_put(kairos_kobj);
		kairos_kobj = NULL;
		return ret;
	}
	/* debugfs is optional: without it the reports are missing, no more. */
	kairos_debugfs = debugfs_create_dir("kairos", NULL);
	kairos_clock_debugfs_init(kairos_debugfs);
	kairos_events_debugfs_init(kairos_debugfs);
	kairos_vmrpc_debugfs_init(kairos_debugfs);
	return 0;
}

void kairos_sysfs_exit(void)
{
	/* Waits for the handlers still running in these files. */
	debugfs_remove_recursive(kairos_debugfs);
	kairos_debugfs = NULL;
	sysfs_remove_groups(kairos_kobj, kairos_attr_groups);
	kobject_put(kairos_kobj);
	kairos_kobj = NULL;
}
