// SPDX-License-Identifier: GPL-2.0
/*
 * Outsourced timers over VMRPC (kairos_abi.h, "VMRPC"; DESIGN.md section 5).
 *
 * kairos.ko registers KAIROS_RING_PAGES pages with the monitor: a header,
 * a request ring (guest -> host) and a completion ring (host -> guest).
 * Arming a kairos_timer posts KAIROS_TIMER_ADD/MOD, cancelling it posts
 * KAIROS_TIMER_DEL; the host keeps every timer in one heap and, when one
 * expires, publishes a completion and raises KAIROS_EVENT_TIMER_EXPIRED.
 * The event handler schedules a tasklet that consumes the completions and
 * runs the callbacks (softirq context), then acks if the host asks.
 *
 * Priority windows (kairos_abi.h, ABI 2). Every request names the vCPU of
 * the CPU that armed the timer (its APIC id), where the consumer is taken
 * to run. The host may fire up to KAIROS_MAX_ADVANCE_NS early: the tasklet
 * reports each expiry's arrival and waits, by the shared clock, until the
 * deadline. Once a callback returned (or an expiry was dropped as stale) it
 * adds to kairos_ring_header.work_done and, while the host asks for it
 * (host_wants_done: a window is open), writes KAIROS_PORT_DONE, one report
 * per batch; for timers with KAIROS_TIMER_OWNER_REPORTS_DONE the owner
 * reports instead, through kairos_timer_work_done(). KAIROS_PORT_ACK, too,
 * is written only while the host asks (host_wants_ack).
 *
 * Ids. Every arming gets a fresh wire id from a cyclic 32-bit xarray
 * allocation, and the previous one is erased: the wire id is the timer's
 * generation. An expiry that was already in the completion ring when the
 * timer was modified or deleted finds no entry (or, only after 2^32 further
 * armings, another one) and is dropped as stale. So a callback runs exactly
 * once per arming, and never after kairos_timer_del() returned true.
 *
 * Locking. One lock, the xarray's (IRQ-safe), covers the id map, every
 * timer's state and the request producer, so requests for one timer reach
 * the ring in the order of the state changes.
 *
 * A full request ring: the producer drops the lock, rings the doorbell and
 * waits for the host to consume (the host consumes requests even while the
 * completion ring is full, so this cannot deadlock). Callers that can
 * sleep wait in 50-100 us steps for up to KAIROS_RING_WAIT_MS; atomic callers
 * spin for up to KAIROS_RING_SPIN_US. Then the call fails with -EBUSY.
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/gfp.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/preempt.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <asm/barrier.h>

#include "internal.h"

#define KAIROS_RING_WAIT_MS 1000
#define KAIROS_RING_SPIN_US 2000
/* Completions one tasklet run consumes before it yields the CPU. */
#define KAIROS_COMPLETION_BUDGET 1024
#define KAIROS_COMPLETION_BATCH 32

/* Counters for /sys/kernel/kairos (this file's attributes, at its end). */
static struct kairos_timer_stats {
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
} kairos_timer_stats;

static struct kairos_ring_header *kairos_ring;
static struct kairos_timer_request *kairos_requests;
static const struct kairos_timer_completion *kairos_completions;
static bool kairos_ring_registered;
static bool kairos_ring_closing;	/* under the lock: no new armings */
static u32 kairos_request_producer;	/* under the lock */
static u32 kairos_completion_consumer;	/* tasklet only */
static u32 kairos_next_id;		/* xa_alloc_cyclic's cursor */

/* Wire id -> armed timer. Its lock is the one lock of this file. */
static DEFINE_XARRAY_FLAGS(kairos_timer_ids, XA_FLAGS_ALLOC1 | XA_FLAGS_LOCK_IRQ);

/*
 * Work done: the count published in the ring header. Its own lock, so that
 * reports from the tasklet and from owners (any CPU) reach the host in
 * increasing order.
 */
static DEFINE_SPINLOCK(kairos_done_lock);
static u32 kairos_work_done;		/* under kairos_done_lock */
static bool kairos_done_paused;		/* under kairos_done_lock: "no-done" hook */

/* The timer whose callback the tasklet runs, for kairos_timer_del_sync(). */
static struct kairos_timer *kairos_running_timer;
static DECLARE_WAIT_QUEUE_HEAD(kairos_running_wait);

static void kairos_completion_tasklet(struct tasklet_struct *tasklet);
static DECLARE_TASKLET(kairos_completions_tasklet, kairos_completion_tasklet);

static void kairos_inject_setup(void);

static inline void kairos_timers_lock(unsigned long *flags)
{
	xa_lock_irqsave(&kairos_timer_ids, *flags);
}

static inline void kairos_timers_unlock(unsigned long flags)
{
	xa_unlock_irqrestore(&kairos_timer_ids, flags);
}

static void kairos_doorbell(void)
{
	outl(0, kairos.io_base + KAIROS_PORT_DOORBELL);
}

/* Free request slots; the host's consumer index is read with acquire. */
static u32 kairos_request_space(void)
{
	u32 consumer, used;

	/* Acquire: the host's reads of those slots before we reuse them. */
	consumer = smp_load_acquire(&kairos_ring->request_consumer);
	used = kairos_request_producer - consumer;

	return used >= KAIROS_RING_REQUESTS ? 0 : KAIROS_RING_REQUESTS - used;
}

/* Lock held, space checked: write one entry, not yet published. */
static void kairos_request_write(u16 op, u16 vcpu, u32 id, u64 deadline_ns)
{
	struct kairos_timer_request *request;

	request = &kairos_requests[kairos_request_producer % KAIROS_RING_REQUESTS];
	WRITE_ONCE(request->op, op);
	WRITE_ONCE(request->vcpu, vcpu);
	WRITE_ONCE(request->timer_id, id);
	WRITE_ONCE(request->deadline_ns, deadline_ns);
	kairos_request_producer++;
	atomic_long_inc(&kairos_timer_stats.requests);
}

/* Lock held: publish what was written, and tell the host unless it polls. */
static void kairos_request_publish(void)
{
	/* Release: the entries before the index that publishes them. */
	smp_store_release(&kairos_ring->request_producer,
			  kairos_request_producer);
	/* The producer index before the host's polling flag. */
	smp_mb();
	if (!READ_ONCE(kairos_ring->host_polling))
		kairos_doorbell();
}

/* Whether the caller, before taking the lock, may sleep while it waits. */
static bool kairos_may_sleep(void)
{
	return preemptible() && !rcu_preempt_depth();
}

/*
 * Lock held: make room for @slots requests. Returns 0 with the lock held,
 * or -EBUSY (lock held as well) when the host consumed nothing in time.
 * The ring is looked at again after every wait before the time is checked:
 * a vCPU that was itself not running for a while (its host busy) finds the
 * room the host made meanwhile instead of blaming the host for lost time.
 * The lock is dropped while waiting: callers re-check the timer's state.
 * *@dropped says whether it was.
 */
static int kairos_request_reserve(u32 slots, bool can_sleep,
				  unsigned long *flags, bool *dropped)
{
	unsigned long until = jiffies + msecs_to_jiffies(KAIROS_RING_WAIT_MS);
	unsigned int spun = 0;

	*dropped = false;
	while (kairos_request_space() < slots) {
		if (can_sleep ? time_after(jiffies, until) :
				spun > KAIROS_RING_SPIN_US)
			return -EBUSY;
		*dropped = true;
		atomic_long_inc(&kairos_timer_stats.ring_full_waits);
		kairos_timers_unlock(*flags);
		kairos_doorbell();
		if (can_sleep) {
			usleep_range(50, 100);
		} else {
			udelay(1);
			spun++;
		}
		kairos_timers_lock(flags);
	}
	return 0;
}

void kairos_timer_setup(struct kairos_timer *timer,
			void (*fn)(struct kairos_timer *timer),
			unsigned int flags)
{
	timer->fn = fn;
	timer->flags = flags;
	timer->deadline_ns = 0;
	timer->id = 0;
	timer->generation = 0;
	timer->error = 0;
	timer->vcpu = KAIROS_VCPU_ANY;
	timer->pending = false;
}
EXPORT_SYMBOL_GPL(kairos_timer_setup);

/* Lock held, timer pending: forget its id (any expiry of it is now stale). */
static void kairos_timer_forget(struct kairos_timer *timer)
{
	__xa_erase(&kairos_timer_ids, timer->id);
	timer->id = 0;
	timer->pending = false;
	atomic_long_dec(&kairos_timer_stats.armed);
}

/*
 * Arm (or re-arm) @timer at @deadline_ns. Returns 1 if it was pending, 0 if
 * not, or a negative errno: -ENOSPC once after the host refused its
 * previous arming (quota), -EOPNOTSUPP without a ring, -EBUSY when the
 * request ring stayed full, -ENOMEM.
 */
static int kairos_timer_arm(struct kairos_timer *timer, u64 deadline_ns,
			    bool modify)
{
	unsigned long flags;
	bool dropped;
	bool was_pending;
	bool can_sleep = kairos_may_sleep();
	u32 id;
	u16 op, vcpu;
	int ret;

	if (!READ_ONCE(kairos_ring_registered))
		return -EOPNOTSUPP;

	kairos_timers_lock(&flags);
	do {
		if (kairos_ring_closing) {
			ret = -ENODEV;
			goto unlock;
		}
		/* DEL of the old arming, then the new one. */
		ret = kairos_request_reserve(timer->pending ? 2 : 1, can_sleep,
					     &flags, &dropped);
		if (ret)
			goto unlock;
	} while (dropped);

	/* A refusal the callback did not see is reported here, once. */
	if (timer->error && !(timer->flags & KAIROS_TIMER_REPORT_ERRORS)) {
		ret = timer->error;
		timer->error = 0;
		goto unlock;
	}
	timer->error = 0;

	ret = __xa_alloc_cyclic(&kairos_timer_ids, &id, timer, xa_limit_32b,
				&kairos_next_id, GFP_ATOMIC | __GFP_NOWARN);
	if (ret < 0)
		goto unlock;

	was_pending = timer->pending;
	if (was_pending) {
		kairos_request_write(KAIROS_TIMER_DEL, KAIROS_VCPU_ANY, timer->id, 0);
		kairos_timer_forget(timer);
	}
	op = modify && was_pending ? KAIROS_TIMER_MOD : KAIROS_TIMER_ADD;
	/* The arming CPU's task consumes the expiry; IRQs are off here. */
	vcpu = kairos_cpu_to_vcpu(smp_processor_id());
	kairos_request_write(op, vcpu, id, deadline_ns);
	kairos_request_publish();

	timer->id = id;
	timer->generation++;
	timer->deadline_ns = deadline_ns;
	timer->vcpu = vcpu;
	timer->pending = true;
	atomic_long_inc(&kairos_timer_stats.armed);
	ret = was_pending;
unlock:
	kairos_timers_unlock(flags);
	return ret;
}

int kairos_timer_add(struct kairos_timer *timer, u64 deadline_ns)
{
	int ret = kairos_timer_arm(timer, deadline_ns, false);

	return ret < 0 ? ret : 0;
}
EXPORT_SYMBOL_GPL(kairos_timer_add);

int kairos_timer_mod(struct kairos_timer *timer, u64 deadline_ns)
{
	return kairos_timer_arm(timer, deadline_ns, true);
}
EXPORT_SYMBOL_GPL(kairos_timer_mod);

int kairos_timer_del(struct kairos_timer *timer)
{
	bool can_sleep = kairos_may_sleep();
	unsigned long flags;
	bool dropped;
	int ret = 0;

	kairos_timers_lock(&flags);
	do {
		if (!timer->pending)
			goto unlock;
		/*
		 * Without room for the DEL the timer is forgotten anyway: its
		 * expiry will be stale, and it costs the host quota until then.
		 */
		if (kairos_ring_closing ||
		    kairos_request_reserve(1, can_sleep, &flags, &dropped)) {
			kairos_timer_forget(timer);
			ret = 1;
			goto unlock;
		}
	} while (dropped);

	kairos_request_write(KAIROS_TIMER_DEL, KAIROS_VCPU_ANY, timer->id, 0);
	kairos_request_publish();
	kairos_timer_forget(timer);
	ret = 1;
unlock:
	kairos_timers_unlock(flags);
	return ret;
}
EXPORT_SYMBOL_GPL(kairos_timer_del);

int kairos_timer_del_sync(struct kairos_timer *timer)
{
	int ret;

	might_sleep();
	ret = kairos_timer_del(timer);
	wait_event(kairos_running_wait,
		   READ_ONCE(kairos_running_timer) != timer);
	return ret;
}
EXPORT_SYMBOL_GPL(kairos_timer_del_sync);

bool kairos_timer_pending(const struct kairos_timer *timer)
{
	return READ_ONCE(timer->pending);
}
EXPORT_SYMBOL_GPL(kairos_timer_pending);

/* Done lock held: publish the count, unless a test hook paused reports. */
static void kairos_work_done_publish(void)
{
	if (kairos_done_paused || !READ_ONCE(kairos_ring_registered))
		return;
	/* Release: the consumers' work before the count that reports it. */
	smp_store_release(&kairos_ring->work_done, kairos_work_done);
	/* The count before the host's flag: it reads the count after setting it. */
	smp_mb();
	if (!READ_ONCE(kairos_ring->host_wants_done))
		return;
	outl(0, kairos.io_base + KAIROS_PORT_DONE);
	atomic_long_inc(&kairos_timer_stats.done_reports);
}

/* @count more expiries are done: tell the host. */
static void kairos_work_done_add(unsigned int count)
{
	unsigned long flags;

	if (!count)
		return;
	spin_lock_irqsave(&kairos_done_lock, flags);
	kairos_work_done += count;
	atomic_long_add(count, &kairos_timer_stats.work_done);
	kairos_work_done_publish();
	spin_unlock_irqrestore(&kairos_done_lock, flags);
}

void kairos_timer_work_done(unsigned int count)
{
	kairos_work_done_add(count);
}
EXPORT_SYMBOL_GPL(kairos_timer_work_done);

/*
 * Spin, lock dropped, until @deadline by the shared clock, but for no more
 * than KAIROS_MAX_ADVANCE_NS after @now (bounded in steps too, should the
 * clock stall). Returns the clock when done.
 */
static u64 kairos_wait_until(u64 deadline, u64 now)
{
	u64 until = min_t(u64, deadline, now + KAIROS_MAX_ADVANCE_NS);
	unsigned int steps = 2 * (KAIROS_MAX_ADVANCE_NS / NSEC_PER_USEC) + 2;

	while (now < until && steps--) {
		ndelay(min_t(u64, until - now, NSEC_PER_USEC));
		now = kairos_system_time_ns();
	}
	return now;
}

/*
 * Lock held, *@timer armed as @id, fired by the host too early to wait for:
 * send the arming again, to be fired at its deadline. Returns -EAGAIN; or
 * 0 with *@timer NULL if it was deleted or re-armed meanwhile (the lock
 * may be dropped for ring space); or, without ring space, forgets the timer
 * with timer->error set and returns that error.
 */
static int kairos_expiry_repost(u32 id, struct kairos_timer **timer,
				unsigned long *flags)
{
	bool dropped;
	int ret;

	do {
		dropped = false;
		ret = kairos_ring_closing ? -ENODEV :
		      kairos_request_reserve(1, false, flags, &dropped);
		*timer = xa_load(&kairos_timer_ids, id);
		if (!*timer)
			return 0;
		if (ret) {
			kairos_timer_forget(*timer);
			(*timer)->error = -EIO;
			return -EIO;
		}
	} while (dropped);

	kairos_request_write(KAIROS_TIMER_ADD, (*timer)->vcpu, id,
			     (*timer)->deadline_ns);
	kairos_request_publish();
	return -EAGAIN;
}

/*
 * Lock held, *@timer armed as @id, just expired. The host may fire up to
 * KAIROS_MAX_ADVANCE_NS early (kairos_abi.h, "Priority windows"): record
 * the arrival, then wait, lock dropped, until the deadline by the shared
 * clock. Returns 0, lock held, once the deadline passed, with *@timer NULL
 * if it was deleted or re-armed meanwhile (the expiry is then stale). A
 * callback never runs early: if the host fired earlier than it may, the
 * arming is sent again (kairos_expiry_repost()).
 */
static int kairos_expiry_arrive(u32 id, struct kairos_timer **timer,
				unsigned long *flags)
{
	u64 deadline = (*timer)->deadline_ns;
	u64 arrival = kairos_system_time_ns();
	u64 now;

	WRITE_ONCE(kairos_ring->arrival_ns,
		   (s32)clamp_t(s64, (s64)(arrival - deadline), S32_MIN, S32_MAX));
	if (arrival >= deadline)
		return 0;

	atomic_long_inc(&kairos_timer_stats.early_arrivals);
	kairos_timers_unlock(*flags);
	now = kairos_wait_until(deadline, arrival);
	kairos_timers_lock(flags);
	/* The same id is the same arming (ids are generations). */
	*timer = xa_load(&kairos_timer_ids, id);
	if (!*timer || now >= deadline)
		return 0;

	pr_warn_once("host fired timer %u %llu ns before its deadline (at most %u ns allowed); re-arming it\n",
		     id, deadline - arrival, KAIROS_MAX_ADVANCE_NS);
	atomic_long_inc(&kairos_timer_stats.early_reposts);
	return kairos_expiry_repost(id, timer, flags);
}

/*
 * Tasklet: one completion, already copied out of the ring. Adds to *@done
 * the expiries it is done with: stale ones, and those whose callback
 * returned, unless the timer's owner reports them itself.
 */
static void kairos_completion_handle(const struct kairos_timer_completion *completion,
				     unsigned int *done)
{
	struct kairos_timer *timer;
	unsigned long flags;
	bool done_after_callback = false;
	int ret;

	kairos_timers_lock(&flags);
	timer = xa_load(&kairos_timer_ids, completion->timer_id);
	if (completion->kind == KAIROS_COMPLETION_ERROR) {
		if (completion->result == KAIROS_TIMER_ENOENT) {
			/* A DEL that crossed the expiry: expected. */
			atomic_long_inc(&kairos_timer_stats.del_races);
			goto unlock;
		}
		atomic_long_inc(&kairos_timer_stats.errors);
		if (completion->result == KAIROS_TIMER_EQUOTA)
			atomic_long_inc(&kairos_timer_stats.quota_refusals);
		else if (completion->result == KAIROS_TIMER_EBADINDEX)
			atomic_long_inc(&kairos_timer_stats.bad_index_reports);
		else if (completion->result == KAIROS_TIMER_EBADOP)
			atomic_long_inc(&kairos_timer_stats.bad_op_reports);
		else if (completion->result == KAIROS_TIMER_EBADVCPU)
			atomic_long_inc(&kairos_timer_stats.bad_vcpu_reports);
		if (!timer)
			goto unlock;
		kairos_timer_forget(timer);
		timer->error = completion->result == KAIROS_TIMER_EQUOTA ?
			       -ENOSPC : -EIO;
		if (!(timer->flags & KAIROS_TIMER_REPORT_ERRORS))
			goto unlock;
	} else if (completion->kind == KAIROS_COMPLETION_EXPIRED) {
		/* Every expiry is done once: here, after its callback, or by its owner. */
		ret = timer ? kairos_expiry_arrive(completion->timer_id, &timer,
						   &flags) : 0;
		if (!timer) {
			atomic_long_inc(&kairos_timer_stats.stale);
			(*done)++;
			goto unlock;
		}
		if (ret) {
			/* Too early: re-armed, or forgotten with the error. */
			(*done)++;
			if (ret == -EAGAIN ||
			    !(timer->flags & KAIROS_TIMER_REPORT_ERRORS))
				goto unlock;
		} else {
			kairos_timer_forget(timer);
			atomic_long_inc(&kairos_timer_stats.expiries);
			/* Read now: the callback may free the timer. */
			done_after_callback =
				!(timer->flags & KAIROS_TIMER_OWNER_REPORTS_DONE);
		}
	} else {
		atomic_long_inc(&kairos_timer_stats.errors);
		goto unlock;
	}

	WRITE_ONCE(kairos_running_timer, timer);
	kairos_timers_unlock(flags);
	timer->fn(timer);
	if (done_after_callback)
		(*done)++;
	kairos_timers_lock(&flags);
	WRITE_ONCE(kairos_running_timer, NULL);
	kairos_timers_unlock(flags);
	if (wq_has_sleeper(&kairos_running_wait))
		wake_up_all(&kairos_running_wait);
	return;
unlock:
	kairos_timers_unlock(flags);
}

/* Copies up to @max published completions; releases their slots. */
static unsigned int kairos_completions_take(struct kairos_timer_completion *out,
					    unsigned int max)
{
	u32 available, i;

	/* Acquire: the index before the entries it publishes. */
	available = smp_load_acquire(&kairos_ring->completion_producer) -
		    kairos_completion_consumer;
	if (available > KAIROS_RING_COMPLETIONS) {
		pr_warn_once("host published %u completions, the ring holds %u\n",
			     available, KAIROS_RING_COMPLETIONS);
		return 0;
	}
	available = min_t(u32, available, max);
	for (i = 0; i < available; i++)
		out[i] = kairos_completions[(kairos_completion_consumer + i) %
					    KAIROS_RING_COMPLETIONS];
	kairos_completion_consumer += available;
	/* Release: our copies before the host may overwrite the slots. */
	smp_store_release(&kairos_ring->completion_consumer,
			  kairos_completion_consumer);
	return available;
}

static void kairos_completion_tasklet(struct tasklet_struct *tasklet)
{
	struct kairos_timer_completion batch[KAIROS_COMPLETION_BATCH];
	unsigned int taken = 0, count, i;
	unsigned int done;

	do {
		count = kairos_completions_take(batch, ARRAY_SIZE(batch));
		done = 0;
		for (i = 0; i < count; i++)
			kairos_completion_handle(&batch[i], &done);
		/* One report per batch: the port write is a VM exit. */
		kairos_work_done_add(done);
		taken += count;
	} while (count && taken < KAIROS_COMPLETION_BUDGET);

	/*
	 * The host flushes expiries it held while the ring was full; it asks
	 * for the ack then only. The consumer index (published by
	 * kairos_completions_take()) before the flag, as for host_polling.
	 */
	smp_mb();
	if (READ_ONCE(kairos_ring->host_wants_ack))
		outl(0, kairos.io_base + KAIROS_PORT_ACK);
	if (count)
		tasklet_schedule(&kairos_completions_tasklet);
}

/* Hard IRQ: hand the completions to the tasklet. */
static void kairos_timer_expired_event(unsigned int port, void *data)
{
	tasklet_schedule(&kairos_completions_tasklet);
}

int kairos_vmrpc_init(void)
{
	struct page *pages;
	unsigned long pfn;
	int status;
	int ret;

	BUILD_BUG_ON(KAIROS_RING_PAGES != 4);
	pages = alloc_pages(GFP_KERNEL | __GFP_ZERO, get_order(KAIROS_RING_PAGES * PAGE_SIZE));
	if (!pages)
		return -ENOMEM;
	pfn = page_to_pfn(pages);
	if (pfn > U32_MAX) {
		pr_err("timer ring frame 0x%lx does not fit the 32-bit argument\n",
		       pfn);
		ret = -ENOMEM;
		goto free_pages;
	}
	kairos_ring = page_address(pages);
	kairos_requests = (void *)kairos_ring + PAGE_SIZE;
	kairos_completions = (void *)kairos_ring + 2 * PAGE_SIZE;
	/* All four indices start equal (zeroed); the host adopts them. */
	kairos_request_producer = 0;
	kairos_completion_consumer = 0;

	ret = kairos_event_bind(KAIROS_EVENT_TIMER_EXPIRED,
				kairos_timer_expired_event, NULL);
	if (ret)
		goto free_pages;

	status = kairos_command(KAIROS_CMD_REGISTER_RING, pfn, KAIROS_RING_PAGES);
	if (status != KAIROS_OK) {
		/* An older host: the clock and events work without timers. */
		pr_info("host refused the timer ring: status %d; no outsourced timers\n",
			status);
		kairos_event_unbind(KAIROS_EVENT_TIMER_EXPIRED);
		ret = 0;
		goto free_pages;
	}
	kairos_inject_setup();
	WRITE_ONCE(kairos_ring_registered, true);
	return 0;

free_pages:
	kairos_ring = NULL;
	__free_pages(pages, get_order(KAIROS_RING_PAGES * PAGE_SIZE));
	return ret;
}

void kairos_vmrpc_exit(void)
{
	struct kairos_timer *timer;
	unsigned long flags;
	unsigned long index;
	int status;

	if (!kairos_ring_registered)
		return;

	/* Users hold references on kairos.ko: normally nothing is armed. */
	kairos_timers_lock(&flags);
	kairos_ring_closing = true;
	xa_for_each(&kairos_timer_ids, index, timer)
		kairos_timer_forget(timer);
	kairos_timers_unlock(flags);

	kairos_event_unbind(KAIROS_EVENT_TIMER_EXPIRED);
	tasklet_kill(&kairos_completions_tasklet);
	/* Owners' done reports stop writing to the ring now. */
	spin_lock_irqsave(&kairos_done_lock, flags);
	WRITE_ONCE(kairos_ring_registered, false);
	spin_unlock_irqrestore(&kairos_done_lock, flags);

	status = kairos_command(KAIROS_CMD_UNREGISTER_RING, 0, 0);
	if (status != KAIROS_OK) {
		pr_err("host refused to unregister the timer ring: status %d; leaking it\n",
		       status);
		return;
	}
	free_pages((unsigned long)kairos_ring,
		   get_order(KAIROS_RING_PAGES * PAGE_SIZE));
	kairos_ring = NULL;
}

bool kairos_vmrpc_registered(void)
{
	return READ_ONCE(kairos_ring_registered);
}

/*
 * Test hooks: /sys/kernel/debug/kairos/vmrpc_inject, with the module parameter
 * test_hooks=1 only. They feed the host, through the real ring, what a
 * broken or hostile guest could, so that tests can check that the monitor
 * shrugs it off (error completions and counters, no crash, no hang) and that
 * the ring keeps working afterwards; and they make the guest behave in ways
 * the priority windows must survive: never reporting work done, a storm of
 * short timers, timers left armed when kairos.ko unloads.
 */
static bool test_hooks;
module_param(test_hooks, bool, 0444);
MODULE_PARM_DESC(test_hooks, "Allow /sys/kernel/debug/kairos/vmrpc_inject (tests only; default 0)");

#define KAIROS_INJECT_MAX 4096
/* Ids no real arming gets within a test: the cursor starts at 1. */
#define KAIROS_INJECT_ID_BASE 0x80000000u
#define KAIROS_INJECT_WAIT_MS 10000
#define KAIROS_STORM_PERIOD_NS (10 * NSEC_PER_USEC)
#define KAIROS_STORM_MAX_S 3600
#define KAIROS_ARM_FAR_MAX_MS (3600 * MSEC_PER_SEC)

/* "storm": re-armed by its own callback until kairos_storm_until. */
static struct kairos_timer kairos_storm_timer;
static u64 kairos_storm_until;
/* "arm-far": armed and left to whoever comes next (rmmod, typically). */
static struct kairos_timer kairos_far_timer;

static void kairos_storm_fn(struct kairos_timer *timer)
{
	u64 now = kairos_system_time_ns();

	/* A refusal (quota) ends the storm, as do unloading and time. */
	if (timer->error || now >= READ_ONCE(kairos_storm_until))
		return;
	kairos_timer_add(timer, now + KAIROS_STORM_PERIOD_NS);
}

static void kairos_far_fn(struct kairos_timer *timer)
{
}

/*
 * Before the ring is registered. Unloading needs nothing of the hooks:
 * kairos_vmrpc_exit() forgets every armed timer, and callbacks cannot
 * re-arm once the ring is closing.
 */
static void kairos_inject_setup(void)
{
	kairos_timer_setup(&kairos_storm_timer, kairos_storm_fn,
			   KAIROS_TIMER_REPORT_ERRORS);
	kairos_timer_setup(&kairos_far_timer, kairos_far_fn, 0);
}

/* A timer every 10 us for @seconds (each expiry re-arms it); returns at once. */
static int kairos_inject_storm(unsigned int seconds)
{
	u64 now = kairos_system_time_ns();

	WRITE_ONCE(kairos_storm_until, now + (u64)seconds * NSEC_PER_SEC);
	/* Running already: it goes on until the new end. */
	if (kairos_timer_pending(&kairos_storm_timer))
		return 0;
	return kairos_timer_add(&kairos_storm_timer,
				now + KAIROS_STORM_PERIOD_NS);
}

/* Arm (or re-arm) the far timer @ms from now. */
static int kairos_inject_arm_far(unsigned int ms)
{
	u64 deadline = kairos_system_time_ns() + (u64)ms * NSEC_PER_MSEC;

	return kairos_timer_add(&kairos_far_timer, deadline);
}

/* Stop (or resume) reporting work done; callbacks still run. */
static void kairos_inject_done_reports(bool paused)
{
	unsigned long flags;

	spin_lock_irqsave(&kairos_done_lock, flags);
	kairos_done_paused = paused;
	/* Resuming tells the host everything done meanwhile. */
	kairos_work_done_publish();
	spin_unlock_irqrestore(&kairos_done_lock, flags);
}

/* @count requests of random op, id (>= the base) and deadline. */
static int kairos_inject_garbage(unsigned int count)
{
	unsigned long flags;
	unsigned int i;
	bool dropped;
	int ret = 0;

	for (i = 0; i < count && !ret; i++) {
		u64 deadline = get_random_u64() >> (get_random_u32() % 64);

		kairos_timers_lock(&flags);
		do {
			ret = kairos_ring_closing ? -ENODEV :
			      kairos_request_reserve(1, true, &flags, &dropped);
		} while (!ret && dropped);
		if (!ret) {
			/* Half name any vCPU, so that bad ops are seen as such. */
			u16 vcpu = get_random_u32() % 2 ? KAIROS_VCPU_ANY :
				   get_random_u32();

			kairos_request_write(get_random_u32() % 8, vcpu,
					     KAIROS_INJECT_ID_BASE | get_random_u32(),
					     deadline);
			kairos_request_publish();
		}
		kairos_timers_unlock(flags);
	}
	return ret;
}

/*
 * A producer index far beyond the ring, with a doorbell; waits for the
 * host's EBADINDEX answer, then puts the true index back and rings again.
 * Armings meanwhile publish the true index themselves (they repair it).
 */
static int kairos_inject_bad_producer(void)
{
	long before = atomic_long_read(&kairos_timer_stats.bad_index_reports);
	unsigned long until = jiffies + msecs_to_jiffies(KAIROS_INJECT_WAIT_MS);
	unsigned long flags;

	kairos_timers_lock(&flags);
	/* Release, as a real publish: the host must see it like one. */
	smp_store_release(&kairos_ring->request_producer,
			  kairos_request_producer + KAIROS_RING_REQUESTS + 1 +
			  get_random_u32() % 100000);
	kairos_doorbell();
	kairos_timers_unlock(flags);

	while (atomic_long_read(&kairos_timer_stats.bad_index_reports) == before &&
	       time_before(jiffies, until))
		msleep(20);

	kairos_timers_lock(&flags);
	/* Release: every request written so far before the true index. */
	smp_store_release(&kairos_ring->request_producer,
			  kairos_request_producer);
	kairos_doorbell();
	kairos_timers_unlock(flags);
	return atomic_long_read(&kairos_timer_stats.bad_index_reports) == before ?
	       -ETIMEDOUT : 0;
}

/*
 * "garbage N", "bad-producer", "no-done", "done", "storm SECONDS" or
 * "arm-far MS"; 0 or a negative errno.
 */
static int kairos_vmrpc_inject(const char *what)
{
	unsigned int count;
	char word[16];

	if (!test_hooks)
		return -EPERM;
	if (!READ_ONCE(kairos_ring_registered))
		return -EOPNOTSUPP;
	if (sscanf(what, "garbage %u", &count) == 1)
		return count <= KAIROS_INJECT_MAX ? kairos_inject_garbage(count) :
		       -EINVAL;
	if (sscanf(what, "storm %u", &count) == 1)
		return count && count <= KAIROS_STORM_MAX_S ?
		       kairos_inject_storm(count) : -EINVAL;
	if (sscanf(what, "arm-far %u", &count) == 1)
		return count <= KAIROS_ARM_FAR_MAX_MS ?
		       kairos_inject_arm_far(count) : -EINVAL;
	if (sscanf(what, "%15s", word) != 1)
		return -EINVAL;
	if (!strcmp(word, "bad-producer"))
		return kairos_inject_bad_producer();
	if (!strcmp(word, "no-done") || !strcmp(word, "done")) {
		kairos_inject_done_reports(!strcmp(word, "no-done"));
		return 0;
	}
	return -EINVAL;
}

static const struct kairos_debugfs_control kairos_vmrpc_inject_control = {
	"vmrpc_inject", kairos_vmrpc_inject
};

void kairos_vmrpc_debugfs_init(struct dentry *dir)
{
	kairos_debugfs_add_control(dir, &kairos_vmrpc_inject_control);
}

static ssize_t timer_ring_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", kairos_vmrpc_registered());
}

static struct kobj_attribute timer_ring_attr = __ATTR_RO(timer_ring);

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

static struct attribute *kairos_vmrpc_attrs[] = {
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
	NULL,
};

const struct attribute_group kairos_vmrpc_attr_group = {
	.attrs = kairos_vmrpc_attrs,
};
