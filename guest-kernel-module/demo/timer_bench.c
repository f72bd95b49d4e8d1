// SPDX-License-Identifier: GPL-2.0
/*
 * kairos-timer-bench.ko: kernel-side timer lateness for bench/timer-latency.
 *
 * At load it runs @count periodic timers, one every @interval_us, on a
 * fixed grid of absolute deadlines in host time (a callback later than the
 * next grid point skips the points already past), and records for each the
 * host time its callback ran minus its deadline, both read with
 * kairos_system_time_ns(), the same ruler as the user-space modes. @mode:
 *
 *   hrtimer   the guest's own hrtimer (CLOCK_MONOTONIC, absolute, hard IRQ
 *             callback; KVM's in-kernel LAPIC timer underneath)
 *   kairos    an outsourced kairos_timer (host timer, VMRPC; the callback
 *             runs from kairos.ko's tasklet)
 *   roundtrip an outsourced kairos_timer armed due at once, again from each
 *             callback: each sample is arming to callback, the VMRPC round
 *             trip (request, doorbell or host polling, immediate expiry,
 *             event, interrupt, tasklet); @interval_us is not used
 *
 * (plain timer_list/add_timer has jiffies resolution, 4 ms at HZ=250, which
 * would hide the sub-millisecond differences measured here.)
 *
 * When done, /sys/module/kairos_timer_bench/parameters/results reads
 *   done=1 samples=N p50_us=.. p99_us=.. p999_us=.. max_us=.. missed=K
 * (missed: callbacks later than one interval; 0 for roundtrip), else done=0.
 */
#define pr_fmt(fmt) "kairos-timer-bench: " fmt

#include <linux/hrtimer.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/workqueue.h>

#include "../kairos.h"

static char mode[16] = "kairos";
module_param_string(mode, mode, sizeof(mode), 0444);
MODULE_PARM_DESC(mode, "hrtimer (the guest's own), kairos (outsourced; default) or roundtrip");

static unsigned int interval_us = 1000;
module_param(interval_us, uint, 0444);
MODULE_PARM_DESC(interval_us, "Period in us (default 1000)");

static unsigned int count = 1000;
module_param(count, uint, 0444);
MODULE_PARM_DESC(count, "Timers to run (default 1000, at most 1000000)");

struct bench_state {
	bool use_hrtimer;
	bool roundtrip;		/* deadline_ns is the arming time, due at once */
	u64 interval_ns;
	u64 deadline_ns;	/* host time of the armed deadline */
	unsigned int taken;
	unsigned int missed;
	s64 *samples;
	bool done;
	bool stopping;		/* unloading: callbacks no longer re-arm */
	int error;
	struct hrtimer hrtimer;
	struct kairos_timer ktimer;
	struct work_struct finish_work;
};

static struct bench_state bench;

/* The next grid point after @now_ns, skipping the ones already past. */
static u64 bench_next_deadline(u64 now_ns)
{
	u64 next = bench.deadline_ns + bench.interval_ns;

	while (next <= now_ns)
		next += bench.interval_ns;
	return next;
}

/* Records one callback; false when the run is over. */
static bool bench_record(u64 now_ns)
{
	s64 late = (s64)(now_ns - bench.deadline_ns);

	bench.samples[bench.taken++] = late;
	if (!bench.roundtrip && late > (s64)bench.interval_ns)
		bench.missed++;
	if (bench.taken < count) {
		bench.deadline_ns = bench.roundtrip ? kairos_system_time_ns() :
				    bench_next_deadline(now_ns);
		return true;
	}
	schedule_work(&bench.finish_work);
	return false;
}

/* The guest's CLOCK_MONOTONIC for a host-time deadline, from now. */
static ktime_t bench_guest_deadline(u64 host_deadline_ns)
{
	u64 now = kairos_system_time_ns();
	u64 ahead = host_deadline_ns > now ? host_deadline_ns - now : 0;

	return ktime_add_ns(ktime_get(), ahead);
}

static enum hrtimer_restart bench_hrtimer_fn(struct hrtimer *timer)
{
	if (!bench_record(kairos_system_time_ns()))
		return HRTIMER_NORESTART;
	hrtimer_set_expires(timer, bench_guest_deadline(bench.deadline_ns));
	return HRTIMER_RESTART;
}

static void bench_kairos_fn(struct kairos_timer *timer)
{
	int ret;

	if (timer->error) {
		bench.error = timer->error;
		schedule_work(&bench.finish_work);
		return;
	}
	if (!bench_record(kairos_system_time_ns()) || READ_ONCE(bench.stopping))
		return;
	ret = kairos_timer_add(timer, bench.deadline_ns);
	if (ret) {
		bench.error = ret;
		schedule_work(&bench.finish_work);
	}
}

static int bench_compare(const void *a, const void *b)
{
	s64 x = *(const s64 *)a, y = *(const s64 *)b;

	return x < y ? -1 : x > y;
}

/* Percentile @per_mille of the sorted samples, in ns. */
static s64 bench_percentile(unsigned int per_mille)
{
	u64 index = DIV_ROUND_UP((u64)per_mille * bench.taken, 1000);

	index = index ? index - 1 : 0;
	return bench.samples[min_t(u64, index, bench.taken - 1)];
}

static void bench_finish(struct work_struct *work)
{
	if (bench.taken)
		sort(bench.samples, bench.taken, sizeof(*bench.samples),
		     bench_compare, NULL);
	WRITE_ONCE(bench.done, true);
}

/* ns as "us.d" (one decimal), like the user-space tool prints. */
static int bench_emit_us(char *buf, int len, const char *key, s64 ns)
{
	u64 tenths = div_u64(ns < 0 ? -(u64)ns : (u64)ns, 100);

	return sysfs_emit_at(buf, len, " %s=%s%llu.%llu", key,
			     ns < 0 ? "-" : "", div_u64(tenths, 10),
			     tenths % 10);
}

static int bench_results_get(char *buf, const struct kernel_param *kp)
{
	int len;

	if (!READ_ONCE(bench.done))
		return sysfs_emit(buf, "done=0 samples=%u\n", bench.taken);
	if (bench.error || !bench.taken)
		return sysfs_emit(buf, "done=1 error=%d samples=%u\n",
				  bench.error, bench.taken);
	len = sysfs_emit(buf, "done=1 samples=%u", bench.taken);
	len += bench_emit_us(buf, len, "p50_us", bench_percentile(500));
	len += bench_emit_us(buf, len, "p99_us", bench_percentile(990));
	len += bench_emit_us(buf, len, "p999_us", bench_percentile(999));
	len += bench_emit_us(buf, len, "max_us", bench.samples[bench.taken - 1]);
	len += sysfs_emit_at(buf, len, " missed=%u\n", bench.missed);
	return len;
}

static const struct kernel_param_ops bench_results_ops = {
	.get = bench_results_get,
};
module_param_cb(results, &bench_results_ops, NULL, 0444);
MODULE_PARM_DESC(results, "The report, once done=1");

static int __init bench_init(void)
{
	int ret;

	if (!strcmp(mode, "hrtimer")) {
		bench.use_hrtimer = true;
	} else if (!strcmp(mode, "roundtrip")) {
		bench.roundtrip = true;
	} else if (strcmp(mode, "kairos")) {
		pr_err("mode must be hrtimer, kairos or roundtrip, got '%s'\n", mode);
		return -EINVAL;
	}
	if (!interval_us || !count || count > 1000000)
		return -EINVAL;
	bench.samples = kvcalloc(count, sizeof(*bench.samples), GFP_KERNEL);
	if (!bench.samples)
		return -ENOMEM;
	bench.interval_ns = (u64)interval_us * NSEC_PER_USEC;
	INIT_WORK(&bench.finish_work, bench_finish);
	bench.deadline_ns = kairos_system_time_ns() +
			    (bench.roundtrip ? 0 : bench.interval_ns);

	if (bench.use_hrtimer) {
		hrtimer_init(&bench.hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_HARD);
		bench.hrtimer.function = bench_hrtimer_fn;
		hrtimer_start(&bench.hrtimer, bench_guest_deadline(bench.deadline_ns),
			      HRTIMER_MODE_ABS_HARD);
		return 0;
	}
	kairos_timer_setup(&bench.ktimer, bench_kairos_fn,
			   KAIROS_TIMER_REPORT_ERRORS);
	ret = kairos_timer_add(&bench.ktimer, bench.deadline_ns);
	if (ret) {
		kvfree(bench.samples);
		return ret;
	}
	return 0;
}

static void __exit bench_exit(void)
{
	WRITE_ONCE(bench.stopping, true);
	if (bench.use_hrtimer) {
		hrtimer_cancel(&bench.hrtimer);
	} else {
		/* A callback running during the first may have re-armed. */
		kairos_timer_del_sync(&bench.ktimer);
		kairos_timer_del_sync(&bench.ktimer);
	}
	cancel_work_sync(&bench.finish_work);
	kvfree(bench.samples);
}

module_init(bench_init);
module_exit(bench_exit);
MODULE_DESCRIPTION("Kernel-side timer lateness, guest hrtimer vs outsourced kairos_timer");
MODULE_LICENSE("GPL");
