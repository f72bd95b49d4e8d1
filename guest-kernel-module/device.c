// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kairos (kairos_uapi.h): sleeping on an outsourced timer, and the
 * shared-info page mapped read-only so user programs read the host's time
 * without a system call.
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "internal.h"
#include "kairos_uapi.h"

struct kairos_sleeper {
	struct kairos_timer timer;
	wait_queue_head_t wait;
	bool woken;
};

static void kairos_sleeper_wake(struct kairos_timer *timer)
{
	struct kairos_sleeper *sleeper =
		container_of(timer, struct kairos_sleeper, timer);

	WRITE_ONCE(sleeper->woken, true);
	wake_up(&sleeper->wait);
}

static long kairos_sleep_until(u64 deadline_ns)
{
	struct kairos_sleeper sleeper;
	int ret;

	init_waitqueue_head(&sleeper.wait);
	sleeper.woken = false;
	/* The work is done when this task runs again, not when it is woken. */
	kairos_timer_setup(&sleeper.timer, kairos_sleeper_wake,
			   KAIROS_TIMER_REPORT_ERRORS |
			   KAIROS_TIMER_OWNER_REPORTS_DONE);
	/* Armed from this CPU: the host takes it to be the sleeper's. */
	ret = kairos_timer_add(&sleeper.timer, deadline_ns);
	if (ret)
		return ret;

	ret = wait_event_interruptible(sleeper.wait, READ_ONCE(sleeper.woken));
	/* The timer lives on this stack: no callback may run after this. */
	kairos_timer_del_sync(&sleeper.timer);
	/*
	 * The expiry's consumer is this task, on its way back to user space.
	 * Also after a signal, if the callback ran anyway; an expiry that
	 * came after the cancel is stale, and kairos.ko counted it.
	 */
	if (READ_ONCE(sleeper.woken) && !sleeper.timer.error)
		kairos_timer_work_done(1);
	if (ret)
		return -EINTR;
	return sleeper.timer.error;
}

static long kairos_device_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	u64 deadline_ns;

	switch (cmd) {
	case KAIROS_IOC_SLEEP_UNTIL:
		if (copy_from_user(&deadline_ns, (void __user *)arg,
				   sizeof(deadline_ns)))
			return -EFAULT;
		return kairos_sleep_until(deadline_ns);
	default:
		return -ENOTTY;
	}
}

/* One page, read-only for good: no VM_WRITE now, no mprotect() later. */
static int kairos_device_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != PAGE_SIZE)
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	vma->vm_flags &= ~VM_MAYWRITE;
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	return remap_pfn_range(vma, vma->vm_start,
			       kairos.shared_gpa >> PAGE_SHIFT, PAGE_SIZE,
			       vma->vm_page_prot);
}

static const struct file_operations kairos_device_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kairos_device_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = kairos_device_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice kairos_device = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kairos",
	.fops = &kairos_device_fops,
	.mode = 0444,
};

int kairos_device_init(void)
{
	int ret;

	ret = misc_register(&kairos_device);
	if (ret)
		pr_err("cannot register /dev/kairos: %d\n", ret);
	return ret;
}

void kairos_device_exit(void)
{
	misc_deregister(&kairos_device);
}
