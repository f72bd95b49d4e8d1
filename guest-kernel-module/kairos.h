/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The API kairos.ko exports to other guest kernel modules.
 *
 * Event channels (after Xen): the monitor raises a port by setting its
 * pending bit in the shared-info page and sending the upcall interrupt.
 * A port is delivered only while it is bound and unmasked; one raised
 * while masked stays pending and is delivered when it is unmasked.
 *
 * Event handlers run in hard-IRQ context with local interrupts disabled,
 * on whichever CPU took the upcall (or unmasked the port): they must not
 * sleep, and should hand long work to a workqueue or tasklet. Two raises
 * of one port in quick succession may be delivered on two CPUs at once.
 */
#ifndef _KAIROS_H
#define _KAIROS_H

#include <linux/bits.h>
#include <linux/types.h>

/*
 * kairos_event_bind - call @handler(@port, @data) for every delivery of @port.
 *
 * @port is KAIROS_EVENT_TIMER_EXPIRED or at least KAIROS_EVENT_FIRST_FREE
 * (kairos.ko owns the other monitor ports). Binding unmasks the port, so an
 * event raised before it was bound is delivered now. Process context.
 * Returns 0, -EINVAL for a bad port or handler, -EBUSY if already bound,
 * -ENOMEM.
 */
int kairos_event_bind(unsigned int port,
		      void (*handler)(unsigned int port, void *data),
		      void *data);

/*
 * kairos_event_unbind - mask @port and forget its handler. When it returns,
 * the handler is not running on any CPU and will not be called again.
 * Process context (it waits for an RCU grace period).
 */
void kairos_event_unbind(unsigned int port);

/* kairos_event_mask - stop delivering @port; raises stay pending. Any context. */
void kairos_event_mask(unsigned int port);

/*
 * kairos_event_unmask - deliver @port again. If it was raised while masked,
 * its handler runs before this returns (on this CPU, unless another CPU's
 * upcall takes it first). Any context.
 */
void kairos_event_unmask(unsigned int port);

/*
 * kairos_system_time_ns - the host's CLOCK_MONOTONIC in nanoseconds, read
 * through the shared-info page without leaving the guest. Never goes
 * backwards. Any context.
 */
u64 kairos_system_time_ns(void);

/*
 * Outsourced timers (DESIGN.md section 5): timer_list semantics, with the
 * deadline kept by the monitor. Deadlines are absolute kairos system time
 * (kairos_system_time_ns(), the host's CLOCK_MONOTONIC). Callbacks run in
 * softirq context (a tasklet), exactly once per arming, at or after the
 * deadline by that clock; a callback may re-arm its own timer. The host
 * is told the vCPU of the CPU that arms a timer: arm from the CPU whose
 * task consumes the expiry (kairos_abi.h, "Priority windows").
 *
 * Fields are private to kairos.ko: set them up with kairos_timer_setup().
 */
struct kairos_timer {
	void (*fn)(struct kairos_timer *timer);
	u64 deadline_ns;	/* of the current or last arming */
	u32 id;			/* wire id of the current arming, 0 if none */
	u32 generation;		/* armings so far */
	unsigned int flags;	/* KAIROS_TIMER_* */
	int error;		/* host refusal, reported once by add/mod */
	u16 vcpu;		/* APIC id the current arming's request named */
	bool pending;
};

/*
 * The host refused an arming (quota): call fn anyway, at once, with
 * timer->error set (-ENOSPC) and the timer not pending. Without it the
 * refusal is only reported by the next kairos_timer_add/mod of the timer.
 */
#define KAIROS_TIMER_REPORT_ERRORS BIT(0)

/*
 * The callback only hands the expiry to its consumer (it wakes a task):
 * kairos.ko does not report the work done when the callback returns; the
 * owner calls kairos_timer_work_done() once the consumer has run (for
 * /dev/kairos, when the woken task returns from the ioctl). Priority
 * windows (kairos_abi.h) stay open until then, or until the host's timeout.
 */
#define KAIROS_TIMER_OWNER_REPORTS_DONE BIT(1)

/* kairos_timer_setup - initialise @timer to call @fn. Any context. */
void kairos_timer_setup(struct kairos_timer *timer,
			void (*fn)(struct kairos_timer *timer),
			unsigned int flags);

/*
 * kairos_timer_add - arm @timer at @deadline_ns (re-arms it if pending).
 * kairos_timer_mod - the same; returns 1 if it was pending, else 0.
 *
 * Any context. Errors: -ENOSPC once after the host refused the timer's
 * previous arming (its quota, outsourcing.max_timers; the request is not
 * sent, retry later), -EOPNOTSUPP if the host has no timer ring, -EBUSY if
 * the request ring stayed full (1 s for callers that may sleep, 2 ms
 * spinning for atomic ones), -ENOMEM, -ENODEV while kairos.ko unloads.
 */
int kairos_timer_add(struct kairos_timer *timer, u64 deadline_ns);
int kairos_timer_mod(struct kairos_timer *timer, u64 deadline_ns);

/*
 * kairos_timer_del - cancel @timer; returns 1 if it was pending, else 0.
 * When it returns 1 the callback will not run for that arming; it may be
 * running on another CPU for an earlier one. Any context.
 */
int kairos_timer_del(struct kairos_timer *timer);

/*
 * kairos_timer_del_sync - kairos_timer_del(), then wait until the callback
 * is not running. Process context; not from the timer's own callback.
 */
int kairos_timer_del_sync(struct kairos_timer *timer);

/* kairos_timer_pending - whether @timer is armed. Any context. */
bool kairos_timer_pending(const struct kairos_timer *timer);

/*
 * kairos_timer_work_done - the consumers of @count expiries of timers with
 * KAIROS_TIMER_OWNER_REPORTS_DONE have run: tell the host now. Only for
 * expiries whose callback ran (not for refusals reported through
 * KAIROS_TIMER_REPORT_ERRORS). Any context.
 */
void kairos_timer_work_done(unsigned int count);

#endif /* _KAIROS_H */
