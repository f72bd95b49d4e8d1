// SPDX-License-Identifier: GPL-2.0
/*
 * kairos-plain-demo.ko: an ordinary timer_list user that knows nothing of
 * Kairos. Loaded with kairos.ko's outsource=plain_demo_timer_fn, its timers
 * run on the monitor's outsourced timers; without it, on the kernel's own.
 *
 * At load it arms @count timers at random expiries within the next
 * @spread_ms (half with add_timer(), half with mod_timer()), checks
 * timer_pending(), cancels every 10th with del_timer_sync() and re-arms
 * (mod_timer) every 7th to a later expiry. Each callback checks that
 * jiffies >= expires and that timer_pending() is false. When every expected
 * callback ran, or @timeout_ms after the last expiry, it reports one line
 * (kernel log and /sys/module/kairos_plain_demo/parameters/results):
 *
 *   done=1 count= armed= cancelled= cancel_late= modded= mod_after_fire=
 *   expected= fired= early= duplicates= missing= cancelled_fired=
 *   pending_wrong= max_late_ms=
 *
 * fired == expected and all of early, duplicates, missing,
 * cancelled_fired and pending_wrong 0 is a pass.
 */
#define pr_fmt(fmt) "kairos-plain-demo: " fmt

#include <linux/atomic.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/workqueue.h>

static unsigned int count = 1000;
module_param(count, uint, 0444);
MODULE_PARM_DESC(count, "Timers to arm (default 1000)");

static unsigned int spread_ms = 2000;
module_param(spread_ms, uint, 0444);
MODULE_PARM_DESC(spread_ms, "Expiries fall within this many ms (default 2000)");

static unsigned int timeout_ms = 30000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms,
		 "Report this long after the last expiry at the latest (default 30000)");

struct plain_timer {
	struct timer_list timer;
	unsigned long expires;	/* of the current arming */
	atomic_t fired;
	unsigned int expected;
	bool cancelled;
};

struct plain_results {
	unsigned int armed, cancelled, cancel_late, modded, mod_after_fire;
	unsigned int expected, duplicates, missing;
	atomic_t fired, early, cancelled_fired, pending_wrong;
	atomic_long_t max_late;	/* jiffies */
	bool done;
};

static struct plain_timer *plain_timers;
static struct plain_results plain;
static unsigned long plain_last_expires;
static struct delayed_work plain_report_work;

static void plain_demo_timer_fn(struct timer_list *timer)
{
	struct plain_timer *t = from_timer(t, timer, timer);
	unsigned long now = jiffies;
	unsigned long expires = READ_ONCE(t->expires);
	long late = (long)(now - expires);
	long max;

	atomic_inc(&t->fired);
	atomic_inc(&plain.fired);
	if (time_before(now, expires))
		atomic_inc(&plain.early);
	if (READ_ONCE(t->cancelled))
		atomic_inc(&plain.cancelled_fired);
	if (timer_pending(timer))
		atomic_inc(&plain.pending_wrong);
	max = atomic_long_read(&plain.max_late);
	while (late > max && !atomic_long_try_cmpxchg(&plain.max_late, &max, late))
		;
}

static unsigned long plain_random_jiffies(unsigned int spread)
{
	return msecs_to_jiffies(get_random_u32() % max(spread, 1u)) + 1;
}

static void plain_arm_all(void)
{
	unsigned int i;
	int ret;

	for (i = 0; i < count; i++) {
		struct plain_timer *t = &plain_timers[i];
		unsigned long expires = jiffies + plain_random_jiffies(spread_ms);

		timer_setup(&t->timer, plain_demo_timer_fn, 0);
		if (timer_pending(&t->timer))
			atomic_inc(&plain.pending_wrong);
		WRITE_ONCE(t->expires, expires);
		t->expected = 1;
		if (i % 2) {
			t->timer.expires = expires;
			add_timer(&t->timer);
		} else if (mod_timer(&t->timer, expires)) {
			atomic_inc(&plain.pending_wrong);
		}
		if (!timer_pending(&t->timer))
			atomic_inc(&plain.pending_wrong);
		plain.armed++;
		plain_last_expires = max(plain_last_expires, expires);
	}

	for (i = 0; i < count; i += 10) {
		struct plain_timer *t = &plain_timers[i];

		if (del_timer_sync(&t->timer)) {
			WRITE_ONCE(t->cancelled, true);
			t->expected = 0;
			plain.cancelled++;
		} else {
			plain.cancel_late++;
		}
		if (timer_pending(&t->timer))
			atomic_inc(&plain.pending_wrong);
	}

	for (i = 0; i < count; i += 7) {
		struct plain_timer *t = &plain_timers[i];
		unsigned long expires;

		if (t->cancelled)
			continue;
		expires = max(t->expires, jiffies) +
			  plain_random_jiffies(spread_ms / 2);
		WRITE_ONCE(t->expires, expires);
		ret = mod_timer(&t->timer, expires);
		if (ret) {
			plain.modded++;
		} else {
			/* It fired already: this is a second arming. */
			t->expected++;
			plain.mod_after_fire++;
		}
		if (!timer_pending(&t->timer))
			atomic_inc(&plain.pending_wrong);
		plain_last_expires = max(plain_last_expires, expires);
	}

	for (i = 0; i < count; i++)
		plain.expected += plain_timers[i].expected;
}

static void plain_report(struct work_struct *work)
{
	unsigned int i;

	if ((unsigned int)atomic_read(&plain.fired) < plain.expected &&
	    time_before(jiffies, plain_last_expires + msecs_to_jiffies(timeout_ms))) {
		schedule_delayed_work(&plain_report_work, msecs_to_jiffies(100));
		return;
	}
	for (i = 0; i < count; i++) {
		unsigned int fired = atomic_read(&plain_timers[i].fired);

		if (fired > plain_timers[i].expected)
			plain.duplicates++;
		else if (fired < plain_timers[i].expected)
			plain.missing++;
		if (!timer_pending(&plain_timers[i].timer))
			continue;
		atomic_inc(&plain.pending_wrong);
	}
	WRITE_ONCE(plain.done, true);
	pr_info("count=%u armed=%u cancelled=%u fired=%d expected=%u early=%d duplicates=%u missing=%u cancelled_fired=%d pending_wrong=%d\n",
		count, plain.armed, plain.cancelled, atomic_read(&plain.fired),
		plain.expected, atomic_read(&plain.early), plain.duplicates,
		plain.missing, atomic_read(&plain.cancelled_fired),
		atomic_read(&plain.pending_wrong));
}

static int plain_results_get(char *buf, const struct kernel_param *kp)
{
	if (!READ_ONCE(plain.done))
		return sysfs_emit(buf, "done=0 fired=%d\n", atomic_read(&plain.fired));
	return sysfs_emit(buf,
			  "done=1 count=%u armed=%u cancelled=%u cancel_late=%u modded=%u mod_after_fire=%u expected=%u fired=%d early=%d duplicates=%u missing=%u cancelled_fired=%d pending_wrong=%d max_late_ms=%u\n",
			  count, plain.armed, plain.cancelled, plain.cancel_late,
			  plain.modded, plain.mod_after_fire, plain.expected,
			  atomic_read(&plain.fired), atomic_read(&plain.early),
			  plain.duplicates, plain.missing,
			  atomic_read(&plain.cancelled_fired),
			  atomic_read(&plain.pending_wrong),
			  jiffies_to_msecs(atomic_long_read(&plain.max_late)));
}

static const struct kernel_param_ops plain_results_ops = {
	.get = plain_results_get,
};
module_param_cb(results, &plain_results_ops, NULL, 0444);
MODULE_PARM_DESC(results, "The report, once done=1");

static int __init plain_init(void)
{
	plain_timers = kvcalloc(count, sizeof(*plain_timers), GFP_KERNEL);
	if (!plain_timers)
		return -ENOMEM;
	INIT_DELAYED_WORK(&plain_report_work, plain_report);
	plain_arm_all();
	pr_info("armed %u timers\n", plain.armed);
	schedule_delayed_work(&plain_report_work, msecs_to_jiffies(100));
	return 0;
}

static void __exit plain_exit(void)
{
	unsigned int i, still_armed = 0;

	cancel_delayed_work_sync(&plain_report_work);
	for (i = 0; i < count; i++)
		still_armed += del_timer_sync(&plain_timers[i].timer);
	pr_info("unloading: cancelled %u armed timers\n", still_armed);
	kvfree(plain_timers);
}

module_init(plain_init);
module_exit(plain_exit);

MODULE_DESCRIPTION("Plain timer_list user, for Kairos transparent outsourcing");
MODULE_LICENSE("GPL");
