// SPDX-License-Identifier: GPL-2.0
/*
 * kairos-demo.ko: exercises kairos.ko's outsourced timers (kairos.h).
 *
 * At load it arms @count timers at random deadlines within the next
 * @spread_ms, cancels every 10th and re-arms (mod) every 7th to a later
 * deadline. Each callback checks that it ran at or after its deadline and
 * counts. When every expected callback ran, or @timeout_ms after the last
 * deadline, it reports one line (kernel log and
 * /sys/module/kairos_demo/parameters/results):
 *
 *   done=1 count= armed= cancelled= cancel_late= modded= mod_after_fire=
 *   expected= fired= refused= early= duplicates= missing= cancelled_fired=
 *   add_errors= first_add_error= max_late_us=
 *
 * fired == expected, early == 0, duplicates == 0, missing == 0 and
 * cancelled_fired == 0 is a pass. The timers are set up with
 * KAIROS_TIMER_REPORT_ERRORS: an arming the host refused (its quota,
 * outsourcing.max_timers) runs the callback with timer->error set, which
 * counts as refused, not fired; then fired + refused == expected.
 *
 * With leave_armed=1 it arms the timers far in the future and reports
 * nothing: rmmod then cancels them all.
 */
#define pr_fmt(fmt) "kairos-demo: " fmt

#include <linux/atomic.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/time64.h>
#include <linux/workqueue.h>

#include "../kairos.h"

static unsigned int count = 10000;
module_param(count, uint, 0444);
MODULE_PARM_DESC(count, "Timers to arm (default 10000)");

static unsigned int spread_ms = 2000;
module_param(spread_ms, uint, 0444);
MODULE_PARM_DESC(spread_ms, "Deadlines fall within this many ms (default 2000)");

static unsigned int timeout_ms = 30000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms,
		 "Report this long after the last deadline at the latest (default 30000)");

static bool leave_armed;
module_param(leave_armed, bool, 0444);
MODULE_PARM_DESC(leave_armed, "Arm far in the future and leave them to rmmod (default 0)");

struct demo_timer {
	struct kairos_timer timer;
	atomic_t fired;		/* callbacks, refusals included */
	unsigned int expected;	/* callbacks this timer must run */
	bool cancelled;		/* kairos_timer_del() returned 1 */
};

struct demo_results {
	unsigned int armed, cancelled, cancel_late, modded, mod_after_fire;
	unsigned int add_errors, expected;
	int first_add_error;	/* errno of the first failed add or mod */
	atomic_t fired, refused, early, cancelled_fired;
	atomic64_t max_late_ns;
	bool done;
	unsigned int duplicates, missing;
};

static struct demo_timer *demo_timers;
static struct demo_results demo;
static u64 demo_last_deadline_ns;
static struct delayed_work demo_report_work;

static void demo_timer_fn(struct kairos_timer *timer)
{
	struct demo_timer *t = container_of(timer, struct demo_timer, timer);
	u64 now = kairos_system_time_ns();
	u64 deadline = READ_ONCE(timer->deadline_ns);
	s64 late = now - deadline;
	s64 max;

	atomic_inc(&t->fired);
	if (timer->error) {
		/* The host refused the arming (quota): not an expiry. */
		atomic_inc(&demo.refused);
		return;
	}
	atomic_inc(&demo.fired);
	if (now < deadline)
		atomic_inc(&demo.early);
	if (READ_ONCE(t->cancelled))
		atomic_inc(&demo.cancelled_fired);
	max = atomic64_read(&demo.max_late_ns);
	while (late > max && !atomic64_try_cmpxchg(&demo.max_late_ns, &max, late))
		;
}

static u64 demo_random_ns(unsigned int spread)
{
	return (u64)(get_random_u32() % max(spread, 1u)) * NSEC_PER_MSEC +
	       get_random_u32() % NSEC_PER_MSEC;
}

/* The first errno is kept for the report: the test prints it on failure. */
static void demo_add_failed(const char *call, int ret)
{
	if (!demo.add_errors++) {
		demo.first_add_error = ret;
		pr_warn("%s: %d\n", call, ret);
	}
}

static void demo_arm_all(void)
{
	u64 later = leave_armed ? 3600ULL * NSEC_PER_SEC : 0;
	unsigned int i;
	int ret;

	/* From each arming's now, so lateness is the timers' own. */
	for (i = 0; i < count; i++) {
		struct demo_timer *t = &demo_timers[i];
		u64 deadline = kairos_system_time_ns() + later +
			       demo_random_ns(spread_ms);

		kairos_timer_setup(&t->timer, demo_timer_fn,
				   KAIROS_TIMER_REPORT_ERRORS);
		ret = kairos_timer_add(&t->timer, deadline);
		if (ret) {
			demo_add_failed("kairos_timer_add", ret);
			continue;
		}
		t->expected = 1;
		demo.armed++;
		demo_last_deadline_ns = max(demo_last_deadline_ns, deadline);
	}
	if (leave_armed)
		return;

	for (i = 0; i < count; i += 10) {
		struct demo_timer *t = &demo_timers[i];

		if (!t->expected)
			continue;
		if (kairos_timer_del(&t->timer)) {
			WRITE_ONCE(t->cancelled, true);
			t->expected = 0;
			demo.cancelled++;
		} else {
			demo.cancel_late++;
		}
	}

	for (i = 0; i < count; i += 7) {
		struct demo_timer *t = &demo_timers[i];
		u64 deadline;

		if (!t->expected || t->cancelled)
			continue;
		deadline = max(t->timer.deadline_ns, kairos_system_time_ns()) +
			   demo_random_ns(spread_ms / 2) + NSEC_PER_MSEC;
		ret = kairos_timer_mod(&t->timer, deadline);
		if (ret < 0) {
			demo_add_failed("kairos_timer_mod", ret);
			continue;
		}
		if (ret) {
			demo.modded++;
		} else {
			/* It fired already: this is a second arming. */
			t->expected++;
			demo.mod_after_fire++;
		}
		demo_last_deadline_ns = max(demo_last_deadline_ns, deadline);
	}

	for (i = 0; i < count; i++)
		demo.expected += demo_timers[i].expected;
}

static void demo_report(struct work_struct *work)
{
	u64 now = kairos_system_time_ns();
	unsigned int i;

	if ((unsigned int)(atomic_read(&demo.fired) +
			   atomic_read(&demo.refused)) < demo.expected &&
	    now < demo_last_deadline_ns + (u64)timeout_ms * NSEC_PER_MSEC) {
		schedule_delayed_work(&demo_report_work, msecs_to_jiffies(100));
		return;
	}
	/* A duplicate that was about to run gets a moment to show itself. */
	for (i = 0; i < count; i++) {
		unsigned int fired = atomic_read(&demo_timers[i].fired);

		if (fired > demo_timers[i].expected)
			demo.duplicates++;
		else if (fired < demo_timers[i].expected)
			demo.missing++;
	}
	WRITE_ONCE(demo.done, true);
	pr_info("count=%u armed=%u cancelled=%u fired=%d refused=%d expected=%u early=%d duplicates=%u missing=%u cancelled_fired=%d\n",
		count, demo.armed, demo.cancelled, atomic_read(&demo.fired),
		atomic_read(&demo.refused), demo.expected,
		atomic_read(&demo.early), demo.duplicates,
		demo.missing, atomic_read(&demo.cancelled_fired));
}

static int demo_results_get(char *buf, const struct kernel_param *kp)
{
	if (!READ_ONCE(demo.done))
		return sysfs_emit(buf, "done=0 fired=%d\n", atomic_read(&demo.fired));
	return sysfs_emit(buf,
			  "done=1 count=%u armed=%u cancelled=%u cancel_late=%u modded=%u mod_after_fire=%u expected=%u fired=%d refused=%d early=%d duplicates=%u missing=%u cancelled_fired=%d add_errors=%u first_add_error=%d max_late_us=%lld\n",
			  count, demo.armed, demo.cancelled, demo.cancel_late,
			  demo.modded, demo.mod_after_fire, demo.expected,
			  atomic_read(&demo.fired), atomic_read(&demo.refused),
			  atomic_read(&demo.early),
			  demo.duplicates, demo.missing,
			  atomic_read(&demo.cancelled_fired), demo.add_errors,
			  demo.first_add_error,
			  (long long)atomic64_read(&demo.max_late_ns) / 1000);
}

static const struct kernel_param_ops demo_results_ops = {
	.get = demo_results_get,
};
module_param_cb(results, &demo_results_ops, NULL, 0444);
MODULE_PARM_DESC(results, "The report, once done=1");

static int __init demo_init(void)
{
	demo_timers = kvcalloc(count, sizeof(*demo_timers), GFP_KERNEL);
	if (!demo_timers)
		return -ENOMEM;
	INIT_DELAYED_WORK(&demo_report_work, demo_report);
	demo_arm_all();
	pr_info("armed %u of %u timers (%u add errors)%s\n", demo.armed, count,
		demo.add_errors, leave_armed ? ", leaving them armed" : "");
	if (!leave_armed)
		schedule_delayed_work(&demo_report_work, msecs_to_jiffies(100));
	return 0;
}

static void __exit demo_exit(void)
{
	unsigned int i, still_armed = 0;

	cancel_delayed_work_sync(&demo_report_work);
	for (i = 0; i < count; i++)
		still_armed += kairos_timer_del_sync(&demo_timers[i].timer);
	pr_info("unloading: cancelled %u armed timers\n", still_armed);
	kvfree(demo_timers);
}

module_init(demo_init);
module_exit(demo_exit);

MODULE_DESCRIPTION("Demo and test of Kairos outsourced timers");
MODULE_LICENSE("GPL");
