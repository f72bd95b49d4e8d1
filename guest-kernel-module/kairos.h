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
 * kairos_command - send KAIROS_CMD_* @cmd with arguments @arg0 and @arg1 to
 * the monitor (commands are serialised) and return its KAIROS_OK or
 * negative KAIROS_E* status. Any context.
 */
int kairos_command(u32 cmd, u32 arg0, u32 arg1);

#endif /* _KAIROS_H */
