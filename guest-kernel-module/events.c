// SPDX-License-Identifier: GPL-2.0
/*
 * Event channels, after Xen's 2-level ABI (xen/include/public/xen.h,
 * "Event channel endpoints"; Linux drivers/xen/events/events_2l.c).
 *
 * The monitor raises port P: it sets pending[P] and, if mask[P] is clear,
 * the selector bit P / 64 and upcall_pending, and sends the upcall IRQ.
 * The upcall handler clears upcall_pending, takes the selector word, and
 * test-and-clears each pending, unmasked port of the selected words,
 * calling the port's handler; it repeats while upcall_pending was set
 * again meanwhile. A port raised while masked keeps its pending bit only:
 * unmasking re-checks it, so no event is lost.
 *
 * Ports are masked until bound. Handlers run in hard-IRQ context.
 *
 * The upcall IRQ goes to one CPU, upcall_cpu, and the host is told which
 * vCPU that is (KAIROS_CMD_SET_UPCALL_VCPU): it runs the timer completions
 * tasklet, so priority windows (kairos_abi.h) cover it.
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/acpi.h>
#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/build_bug.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/interrupt.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/lockdep.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <asm/sync_bitops.h>

#include "internal.h"

static int upcall_cpu;
module_param(upcall_cpu, int, 0444);
MODULE_PARM_DESC(upcall_cpu,
		 "CPU that takes the upcall IRQ and runs timer callbacks; -1 leaves the IRQ's affinity alone (default 0)");

struct kairos_binding {
	void (*handler)(unsigned int port, void *data);
	void *data;
};

/* Written under kairos_bind_mutex; read by the dispatcher under RCU. */
static struct kairos_binding __rcu *kairos_bindings[KAIROS_EVENT_PORTS];
static DEFINE_MUTEX(kairos_bind_mutex);
/* Deliveries per port, for /sys/kernel/debug/kairos/events. */
static atomic_long_t kairos_event_counts[KAIROS_EVENT_PORTS];
/* Nonzero while this CPU runs the dispatcher. */
static DEFINE_PER_CPU(unsigned int, kairos_dispatch_depth);

static const char * const kairos_port_names[KAIROS_EVENT_FIRST_FREE] = {
	[KAIROS_EVENT_VIRTUAL_TIMER] = "virtual_timer",
	[KAIROS_EVENT_CONSOLE] = "console",
	[KAIROS_EVENT_DEBUG] = "debug",
	[KAIROS_EVENT_TIMER_EXPIRED] = "timer_expired",
};

/* The monitor's ports that kairos.ko binds itself. */
static const unsigned int kairos_own_ports[] = {
	KAIROS_EVENT_VIRTUAL_TIMER,
	KAIROS_EVENT_CONSOLE,
	KAIROS_EVENT_DEBUG,
};

/* The bitmaps as Linux bitops see them: one unsigned long per u64 word. */
static inline unsigned long *kairos_pending_bits(void)
{
	return (unsigned long *)kairos.shared->pending;
}

static inline unsigned long *kairos_mask_bits(void)
{
	return (unsigned long *)kairos.shared->mask;
}

static void kairos_event_deliver(unsigned int port)
{
	struct kairos_binding *binding;

	atomic_long_inc(&kairos_event_counts[port]);
	rcu_read_lock();
	binding = rcu_dereference(kairos_bindings[port]);
	if (binding)
		binding->handler(port, binding->data);
	rcu_read_unlock();
}

/*
 * Deliver every pending, unmasked port; local IRQs are disabled. Several
 * CPUs may dispatch at once: the atomic test-and-clear gives each raise to
 * exactly one of them. On one CPU a nested call (a handler that unmasks a
 * port) only leaves upcall_pending set, and the outer loop goes round again.
 */
static void kairos_event_dispatch(void)
{
	struct kairos_shared_info *shared = kairos.shared;
	unsigned long *pending = kairos_pending_bits();
	unsigned long selector, bits;
	unsigned int word, bit;

	lockdep_assert_irqs_disabled();
	if (__this_cpu_inc_return(kairos_dispatch_depth) > 1)
		goto out;

	do {
		WRITE_ONCE(shared->upcall_pending, 0);
		/*
		 * xchg is a full barrier: a raise whose selector bit it misses
		 * sets upcall_pending after the store above, and we go round.
		 */
		selector = xchg(&shared->pending_sel, 0);
		for_each_set_bit(word, &selector, KAIROS_EVENT_WORDS) {
			bits = READ_ONCE(shared->pending[word]) &
			       ~READ_ONCE(shared->mask[word]);
			for_each_set_bit(bit, &bits, BITS_PER_LONG) {
				unsigned int port = word * BITS_PER_LONG + bit;

				if (sync_test_and_clear_bit(port, pending))
					kairos_event_deliver(port);
			}
		}
	} while (READ_ONCE(shared->upcall_pending));

out:
	__this_cpu_dec(kairos_dispatch_depth);
}

static void kairos_event_poll(void)
{
	unsigned long flags;

	local_irq_save(flags);
	kairos_event_dispatch();
	local_irq_restore(flags);
}

static irqreturn_t kairos_upcall_interrupt(int irq, void *dev_id)
{
	kairos_event_dispatch();
	/* Another CPU may have taken the events; the IRQ was still ours. */
	return IRQ_HANDLED;
}

void kairos_event_mask(unsigned int port)
{
	if (WARN_ON_ONCE(port >= KAIROS_EVENT_PORTS))
		return;
	sync_set_bit(port, kairos_mask_bits());
}
EXPORT_SYMBOL_GPL(kairos_event_mask);

void kairos_event_unmask(unsigned int port)
{
	struct kairos_shared_info *shared = kairos.shared;

	if (WARN_ON_ONCE(port >= KAIROS_EVENT_PORTS))
		return;
	sync_clear_bit(port, kairos_mask_bits());
	/*
	 * The host sets pending, then reads mask; we clear mask, then read
	 * pending. With a full barrier between, one of us sees the other.
	 */
	smp_mb__after_atomic();
	if (!sync_test_bit(port, kairos_pending_bits()))
		return;

	/* Raised while masked: the host set no selector bit. Deliver it now. */
	sync_set_bit(port / BITS_PER_LONG,
		     (unsigned long *)&shared->pending_sel);
	WRITE_ONCE(shared->upcall_pending, 1);
	kairos_event_poll();
}
EXPORT_SYMBOL_GPL(kairos_event_unmask);

/* Ports start masked; binding unmasks them. Called before registration. */
void kairos_events_mask_all(void)
{
	unsigned int word;

	for (word = 0; word < KAIROS_EVENT_WORDS; word++)
		WRITE_ONCE(kairos.shared->mask[word], ~0ULL);
}

static int kairos_event_bind_port(unsigned int port,
				  void (*handler)(unsigned int port, void *data),
				  void *data)
{
	struct kairos_binding *binding;

	binding = kmalloc(sizeof(*binding), GFP_KERNEL);
	if (!binding)
		return -ENOMEM;
	binding->handler = handler;
	binding->data = data;

	mutex_lock(&kairos_bind_mutex);
	if (rcu_access_pointer(kairos_bindings[port])) {
		mutex_unlock(&kairos_bind_mutex);
		kfree(binding);
		return -EBUSY;
	}
	rcu_assign_pointer(kairos_bindings[port], binding);
	mutex_unlock(&kairos_bind_mutex);

	kairos_event_unmask(port);
	return 0;
}

int kairos_event_bind(unsigned int port,
		      void (*handler)(unsigned int port, void *data),
		      void *data)
{
	if (port >= KAIROS_EVENT_PORTS || !handler)
		return -EINVAL;
	if (port < KAIROS_EVENT_FIRST_FREE &&
	    port != KAIROS_EVENT_TIMER_EXPIRED)
		return -EINVAL;
	return kairos_event_bind_port(port, handler, data);
}
EXPORT_SYMBOL_GPL(kairos_event_bind);

void kairos_event_unbind(unsigned int port)
{
	struct kairos_binding *binding;

	if (WARN_ON_ONCE(port >= KAIROS_EVENT_PORTS))
		return;
	kairos_event_mask(port);

	mutex_lock(&kairos_bind_mutex);
	binding = rcu_replace_pointer(kairos_bindings[port], NULL,
				      lockdep_is_held(&kairos_bind_mutex));
	mutex_unlock(&kairos_bind_mutex);
	if (!binding)
		return;

	/* Dispatchers run with IRQs off: this waits for running handlers. */
	synchronize_rcu();
	kfree(binding);
}
EXPORT_SYMBOL_GPL(kairos_event_unbind);

/* kairos.ko's own ports: the dispatcher counts them, nothing more yet. */
static void kairos_event_count_only(unsigned int port, void *data)
{
}

/* "PORT COUNT NAME" for each bound port or port that saw an event. */
static int kairos_events_show(struct seq_file *m, void *unused)
{
	struct kairos_binding *binding;
	unsigned long count;
	unsigned int port;

	mutex_lock(&kairos_bind_mutex);
	for (port = 0; port < KAIROS_EVENT_PORTS; port++) {
		binding = rcu_dereference_protected(kairos_bindings[port],
						    lockdep_is_held(&kairos_bind_mutex));
		count = atomic_long_read(&kairos_event_counts[port]);
		if (!binding && !count)
			continue;
		if (port < KAIROS_EVENT_FIRST_FREE && kairos_port_names[port])
			seq_printf(m, "%u %lu %s\n", port, count,
				   kairos_port_names[port]);
		else if (binding)
			seq_printf(m, "%u %lu %ps\n", port, count,
				   binding->handler);
		else
			seq_printf(m, "%u %lu unbound\n", port, count);
	}
	mutex_unlock(&kairos_bind_mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kairos_events);

static int kairos_raise_debug(const char *text)
{
	int status = kairos_command(KAIROS_CMD_RAISE_DEBUG, 0, 0);

	return status == KAIROS_OK ? 0 : kairos_status_to_errno(status);
}

static int kairos_parse_port(const char *text, unsigned int *port)
{
	int ret = kstrtouint(text, 0, port);

	if (ret)
		return ret;
	return *port < KAIROS_EVENT_PORTS ? 0 : -EINVAL;
}

static int kairos_mask_control(const char *text)
{
	unsigned int port;
	int ret = kairos_parse_port(text, &port);

	if (!ret)
		kairos_event_mask(port);
	return ret;
}

static int kairos_unmask_control(const char *text)
{
	unsigned int port;
	int ret = kairos_parse_port(text, &port);

	if (!ret)
		kairos_event_unmask(port);
	return ret;
}

static const struct kairos_debugfs_control kairos_event_controls[] = {
	{ "raise_debug", kairos_raise_debug },
	{ "mask", kairos_mask_control },
	{ "unmask", kairos_unmask_control },
};

void kairos_events_debugfs_init(struct dentry *dir)
{
	unsigned int i;

	debugfs_create_file("events", 0444, dir, NULL, &kairos_events_fops);
	for (i = 0; i < ARRAY_SIZE(kairos_event_controls); i++)
		kairos_debugfs_add_control(dir, &kairos_event_controls[i]);
}

static ssize_t upcall_vcpu_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", kairos.upcall_vcpu);
}

static struct kobj_attribute upcall_vcpu_attr = __ATTR_RO(upcall_vcpu);

static struct attribute *kairos_events_attrs[] = {
	&upcall_vcpu_attr.attr,
	NULL,
};

const struct attribute_group kairos_events_attr_group = {
	.attrs = kairos_events_attrs,
};

/*
 * The upcall line is an ISA IRQ on the IOAPIC. Without ACPI, ISA IRQ n is
 * Linux IRQ n; a hardware-reduced ACPI platform preallocates no legacy IRQs,
 * so the GSI must be registered to get its Linux IRQ.
 */
static int kairos_map_upcall_gsi(void)
{
	if (acpi_disabled)
		return kairos.gsi;
	return acpi_register_gsi(NULL, kairos.gsi, ACPI_EDGE_SENSITIVE,
				 ACPI_ACTIVE_HIGH);
}

static void kairos_unmap_upcall_gsi(void)
{
	if (!acpi_disabled)
		acpi_unregister_gsi(kairos.gsi);
}

/*
 * Route the upcall IRQ to upcall_cpu, then tell the host that vCPU's APIC
 * id. Best effort: without it the host assumes APIC id 0. (An IOAPIC line
 * moves at its next interrupt; until then one upcall may still arrive on
 * the CPU it had.)
 */
static void kairos_steer_upcall(void)
{
	u16 vcpu;
	int ret, status;

	kairos.upcall_vcpu = -1;
	if (upcall_cpu < 0)
		return;
	if (upcall_cpu >= nr_cpu_ids || !cpu_online(upcall_cpu)) {
		pr_warn("upcall_cpu=%d is not an online CPU; upcall IRQ left alone\n",
			upcall_cpu);
		return;
	}
	ret = irq_set_affinity(kairos.irq, cpumask_of(upcall_cpu));
	if (ret) {
		pr_warn("cannot route upcall IRQ %u to CPU %d: %d\n", kairos.irq,
			upcall_cpu, ret);
		return;
	}
	vcpu = kairos_cpu_to_vcpu(upcall_cpu);
	status = kairos_command(KAIROS_CMD_SET_UPCALL_VCPU, vcpu, 0);
	if (status == KAIROS_ENOSYS || status == KAIROS_EINVAL) {
		pr_info("host does not take the upcall vCPU (status %d); it assumes APIC id 0\n",
			status);
		return;
	}
	if (status != KAIROS_OK) {
		pr_warn("host refused upcall vCPU %u (CPU %d): status %d\n", vcpu,
			upcall_cpu, status);
		return;
	}
	kairos.upcall_vcpu = vcpu;
}

int kairos_events_init(void)
{
	unsigned int i;
	int ret;

	BUILD_BUG_ON(sizeof(unsigned long) != sizeof(u64));
	BUILD_BUG_ON(KAIROS_EVENT_WORDS > BITS_PER_LONG);

	for (i = 0; i < ARRAY_SIZE(kairos_own_ports); i++) {
		ret = kairos_event_bind_port(kairos_own_ports[i],
					     kairos_event_count_only, NULL);
		if (ret)
			goto unbind;
	}

	ret = kairos_map_upcall_gsi();
	if (ret < 0) {
		pr_err("cannot map upcall GSI %u: %d\n", kairos.gsi, ret);
		goto unbind;
	}
	kairos.irq = ret;
	ret = request_irq(kairos.irq, kairos_upcall_interrupt, IRQF_NO_THREAD,
			  "kairos", &kairos);
	if (ret) {
		pr_err("cannot request upcall IRQ %u (GSI %u): %d\n",
		       kairos.irq, kairos.gsi, ret);
		kairos_unmap_upcall_gsi();
		goto unbind;
	}
	kairos_steer_upcall();
	/* An upcall sent before request_irq() reached no handler. */
	kairos_event_poll();
	return 0;

unbind:
	while (i--)
		kairos_event_unbind(kairos_own_ports[i]);
	return ret;
}

void kairos_events_exit(void)
{
	unsigned int i;

	free_irq(kairos.irq, &kairos);
	kairos_unmap_upcall_gsi();
	for (i = 0; i < ARRAY_SIZE(kairos_own_ports); i++)
		kairos_event_unbind(kairos_own_ports[i]);
}
