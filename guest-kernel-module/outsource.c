// SPDX-License-Identifier: GPL-2.0
/*
 * Transparent outsourcing of unmodified timer_list users (DESIGN.md
 * section 5).
 *
 * kairos.outsource=fn1,fn2,... names timer callbacks. ftrace (with
 * IPMODIFY, as livepatch does) redirects add_timer(), mod_timer(),
 * timer_delete() (del_timer()) and timer_delete_sync() (del_timer_sync())
 * of timers whose ->function is one of them to the replacements below,
 * which keep a shadow kairos_timer per timer_list and arm it at the
 * equivalent kairos deadline. Its callback calls timer->function(timer)
 * (tasklet, softirq context). Calls from this module itself are never
 * redirected, so the replacements reach the kernel's own functions for
 * what they do not outsource.
 *
 * A callback runs once jiffies reached timer->expires, as on the kernel's
 * timer wheel: an expiry that comes while the guest's jiffies still lag
 * (a late tick) re-arms for the remaining ticks.
 *
 * While outsourced, timer->entry.pprev points at a module-owned dummy, so
 * timer_pending() is true; it is NULL again when the callback runs or the
 * timer is deleted.
 *
 * The names resolve with kallsyms_lookup_name() (found through a kprobe:
 * it is not exported) at load and whenever a module comes; a going
 * module's addresses are forgotten.
 *
 * Shadows stay allocated (keyed by the timer_list's address) until kairos.ko
 * unloads. Unloading stops the redirection, then moves every still-armed
 * outsourced timer back to the kernel's timer wheel (mod_timer() at its
 * expires), so no expiry is lost.
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timer.h>

#include "internal.h"

#define KAIROS_OUTSOURCE_MAX_NAMES 8

static char *outsource;
module_param(outsource, charp, 0444);
MODULE_PARM_DESC(outsource,
		 "Comma-separated timer callback names whose add/mod/del_timer calls are outsourced");

struct kairos_outsource_stats {
	atomic_long_t armings;		/* add_timer/mod_timer outsourced */
	atomic_long_t fires;		/* callbacks run */
	atomic_long_t deletes;		/* deletes that cancelled an outsourced arming */
	atomic_long_t fallbacks;	/* armings left to the kernel (errors) */
	atomic_long_t shadows;		/* shadows allocated */
	atomic_long_t restored;		/* moved back to the timer wheel at unload */
	atomic_long_t early_rearms;	/* expired before jiffies reached expires */
};

static struct kairos_outsource_stats kairos_outsource_stats;

struct kairos_shadow {
	struct hlist_node node;
	struct timer_list *timer;
	struct kairos_timer kt;
};

static char *kairos_outsource_names[KAIROS_OUTSOURCE_MAX_NAMES];
static unsigned long kairos_outsource_addrs[KAIROS_OUTSOURCE_MAX_NAMES];
static unsigned int kairos_outsource_count;
static char *kairos_outsource_buf;
static unsigned long (*kairos_lookup_name)(const char *name);
static bool kairos_outsource_active;
static bool kairos_outsource_closing;	/* under the lock: unloading */
static atomic_t kairos_outsource_inflight = ATOMIC_INIT(0);

/* Covers the shadow table and timer->entry.pprev of outsourced timers. */
static DEFINE_SPINLOCK(kairos_outsource_lock);
static DEFINE_HASHTABLE(kairos_shadows, 10);
/* timer->entry.pprev of an outsourced timer: timer_pending() is true. */
static struct hlist_node *kairos_outsource_dummy;

static bool notrace kairos_outsource_listed(void (*fn)(struct timer_list *))
{
	unsigned int i;

	for (i = 0; i < kairos_outsource_count; i++)
		if (READ_ONCE(kairos_outsource_addrs[i]) == (unsigned long)fn &&
		    fn)
			return true;
	return false;
}

static bool kairos_outsource_native_pending(const struct timer_list *timer)
{
	return timer->entry.pprev &&
	       timer->entry.pprev != &kairos_outsource_dummy;
}

/* Lock held. */
static struct kairos_shadow *kairos_shadow_find(struct timer_list *timer)
{
	struct kairos_shadow *s;

	hash_for_each_possible(kairos_shadows, s, node, (unsigned long)timer)
		if (s->timer == timer)
			return s;
	return NULL;
}

static void kairos_outsource_fire(struct kairos_timer *kt);

/* Lock held. */
static struct kairos_shadow *kairos_shadow_get(struct timer_list *timer)
{
	struct kairos_shadow *s = kairos_shadow_find(timer);

	if (s)
		return s;
	s = kzalloc(sizeof(*s), GFP_ATOMIC | __GFP_NOWARN);
	if (!s)
		return NULL;
	s->timer = timer;
	kairos_timer_setup(&s->kt, kairos_outsource_fire,
			   KAIROS_TIMER_REPORT_ERRORS);
	hash_add(kairos_shadows, &s->node, (unsigned long)timer);
	atomic_long_inc(&kairos_outsource_stats.shadows);
	return s;
}

/*
 * The kairos deadline of @expires (jiffies). One tick more than the
 * difference: jiffies only reaches @expires at a tick, and now may be
 * anywhere in the current one; the callback never sees jiffies < expires.
 */
static u64 kairos_outsource_deadline(unsigned long expires)
{
	long delta = (long)(expires - jiffies);

	if (delta < 0)
		delta = 0;
	return kairos_system_time_ns() + (u64)(delta + 1) * TICK_NSEC;
}

/* Tasklet: an outsourced timer expired (or the host refused it). */
static void kairos_outsource_fire(struct kairos_timer *kt)
{
	struct kairos_shadow *s = container_of(kt, struct kairos_shadow, kt);
	struct timer_list *timer = s->timer;
	void (*fn)(struct timer_list *timer);
	unsigned long flags;

	spin_lock_irqsave(&kairos_outsource_lock, flags);
	if (kairos_timer_pending(kt)) {
		/* Re-armed meanwhile: it stays pending, the callback runs. */
	} else if (timer->entry.pprev == &kairos_outsource_dummy) {
		/*
		 * The guest's jiffies lag the host's clock (a late or lost
		 * tick): like the kernel's timers, never run before jiffies
		 * reached expires. Wait for the remaining ticks.
		 */
		if (!kt->error && !kairos_outsource_closing &&
		    time_before(jiffies, timer->expires) &&
		    kairos_timer_mod(kt, kairos_outsource_deadline(timer->expires)) >= 0) {
			spin_unlock_irqrestore(&kairos_outsource_lock, flags);
			atomic_long_inc(&kairos_outsource_stats.early_rearms);
			return;
		}
		timer->entry.pprev = NULL;
	}
	if (kt->error) {
		/* The host refused the arming: the kernel's wheel takes it. */
		if (!timer_pending(timer)) {
			atomic_long_inc(&kairos_outsource_stats.fallbacks);
			mod_timer(timer, timer->expires);
		}
		spin_unlock_irqrestore(&kairos_outsource_lock, flags);
		return;
	}
	fn = timer->function;
	spin_unlock_irqrestore(&kairos_outsource_lock, flags);
	atomic_long_inc(&kairos_outsource_stats.fires);
	if (fn)
		fn(timer);
}

/* add_timer()/mod_timer() of a listed timer. */
static int kairos_outsource_arm(struct timer_list *timer,
				unsigned long expires, bool add)
{
	struct kairos_shadow *s;
	unsigned long flags;
	int native = 0;
	int ret;

	if (!kairos_outsource_listed(READ_ONCE(timer->function)))
		goto kernel;

	spin_lock_irqsave(&kairos_outsource_lock, flags);
	s = kairos_shadow_get(timer);
	if (!s) {
		spin_unlock_irqrestore(&kairos_outsource_lock, flags);
		goto kernel;
	}
	/* Armed on the wheel before it was outsourced. */
	if (kairos_outsource_native_pending(timer))
		native = timer_delete(timer);
	timer->expires = expires;
	ret = kairos_timer_mod(&s->kt, kairos_outsource_deadline(expires));
	if (ret < 0) {
		/* No ring, quota, ring full: leave it to the kernel. */
		ret = kairos_timer_del(&s->kt);
		if (timer->entry.pprev == &kairos_outsource_dummy)
			timer->entry.pprev = NULL;
		spin_unlock_irqrestore(&kairos_outsource_lock, flags);
		atomic_long_inc(&kairos_outsource_stats.fallbacks);
		return (mod_timer(timer, expires) | ret | native) ? 1 : 0;
	}
	timer->entry.pprev = &kairos_outsource_dummy;
	spin_unlock_irqrestore(&kairos_outsource_lock, flags);
	atomic_long_inc(&kairos_outsource_stats.armings);
	return (ret | native) ? 1 : 0;

kernel:
	if (add) {
		add_timer(timer);
		return 0;
	}
	return mod_timer(timer, expires);
}

/* timer_delete()/timer_delete_sync() of a listed timer. */
static int kairos_outsource_delete(struct timer_list *timer, bool sync)
{
	struct kairos_shadow *s;
	unsigned long flags;
	int ret = 0;

	spin_lock_irqsave(&kairos_outsource_lock, flags);
	s = kairos_shadow_find(timer);
	if (s && kairos_timer_del(&s->kt)) {
		ret = 1;
		atomic_long_inc(&kairos_outsource_stats.deletes);
	}
	if (timer->entry.pprev == &kairos_outsource_dummy)
		timer->entry.pprev = NULL;
	spin_unlock_irqrestore(&kairos_outsource_lock, flags);

	if (sync) {
		/* Waits for a running outsourced callback. */
		if (s)
			kairos_timer_del_sync(&s->kt);
		ret |= timer_delete_sync(timer);
	} else {
		ret |= timer_delete(timer);
	}
	return ret;
}

/* The replacements ftrace redirects to: same signatures as the originals. */
static noinline void kairos_add_timer(struct timer_list *timer)
{
	atomic_inc(&kairos_outsource_inflight);
	kairos_outsource_arm(timer, timer->expires, true);
	atomic_dec(&kairos_outsource_inflight);
}

static noinline int kairos_mod_timer(struct timer_list *timer,
				     unsigned long expires)
{
	int ret;

	atomic_inc(&kairos_outsource_inflight);
	ret = kairos_outsource_arm(timer, expires, false);
	atomic_dec(&kairos_outsource_inflight);
	return ret;
}

static noinline int kairos_timer_delete(struct timer_list *timer)
{
	int ret;

	atomic_inc(&kairos_outsource_inflight);
	ret = kairos_outsource_delete(timer, false);
	atomic_dec(&kairos_outsource_inflight);
	return ret;
}

static noinline int kairos_timer_delete_sync(struct timer_list *timer)
{
	int ret;

	atomic_inc(&kairos_outsource_inflight);
	ret = kairos_outsource_delete(timer, true);
	atomic_dec(&kairos_outsource_inflight);
	return ret;
}

/* Redirects a call of the traced function to ops->private. */
static void notrace kairos_outsource_ftrace(unsigned long ip,
					    unsigned long parent_ip,
					    struct ftrace_ops *ops,
					    struct ftrace_regs *fregs)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);
	struct timer_list *timer;

	if (!regs || within_module(parent_ip, THIS_MODULE))
		return;
	timer = (struct timer_list *)regs->di;
	if (!timer || !kairos_outsource_listed(READ_ONCE(timer->function)))
		return;
	regs->ip = (unsigned long)ops->private;
}

struct kairos_outsource_hook {
	const char *name;
	void *replacement;
	struct ftrace_ops ops;
	bool registered;
};

static struct kairos_outsource_hook kairos_outsource_hooks[] = {
	{ .name = "add_timer", .replacement = kairos_add_timer },
	{ .name = "mod_timer", .replacement = kairos_mod_timer },
	{ .name = "timer_delete", .replacement = kairos_timer_delete },
	{ .name = "timer_delete_sync", .replacement = kairos_timer_delete_sync },
};

static void kairos_outsource_resolve(void)
{
	unsigned int i;

	for (i = 0; i < kairos_outsource_count; i++) {
		unsigned long addr;

		if (READ_ONCE(kairos_outsource_addrs[i]))
			continue;
		addr = kairos_lookup_name(kairos_outsource_names[i]);
		if (addr) {
			pr_info("outsourcing timers of %s (%pS)\n",
				kairos_outsource_names[i], (void *)addr);
			WRITE_ONCE(kairos_outsource_addrs[i], addr);
		}
	}
}

static int kairos_outsource_module_notify(struct notifier_block *nb,
					  unsigned long action, void *data)
{
	struct module *mod = data;
	unsigned int i;

	if (action == MODULE_STATE_COMING) {
		kairos_outsource_resolve();
	} else if (action == MODULE_STATE_GOING) {
		for (i = 0; i < kairos_outsource_count; i++)
			if (within_module(kairos_outsource_addrs[i], mod))
				WRITE_ONCE(kairos_outsource_addrs[i], 0);
	}
	return NOTIFY_OK;
}

static struct notifier_block kairos_outsource_module_nb = {
	.notifier_call = kairos_outsource_module_notify,
};

static int kairos_find_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	int ret;

	ret = register_kprobe(&kp);
	if (ret)
		return ret;
	kairos_lookup_name = (unsigned long (*)(const char *))kp.addr;
	unregister_kprobe(&kp);
	return kairos_lookup_name ? 0 : -ENOENT;
}

static void kairos_outsource_unhook(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kairos_outsource_hooks); i++) {
		struct kairos_outsource_hook *hook = &kairos_outsource_hooks[i];

		if (hook->registered)
			unregister_ftrace_function(&hook->ops);
		hook->registered = false;
		ftrace_free_filter(&hook->ops);
	}
}

static int kairos_outsource_hook(void)
{
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(kairos_outsource_hooks); i++) {
		struct kairos_outsource_hook *hook = &kairos_outsource_hooks[i];
		char buf[32];

		strscpy(buf, hook->name, sizeof(buf));
		hook->ops.func = kairos_outsource_ftrace;
		hook->ops.flags = FTRACE_OPS_FL_SAVE_REGS |
				  FTRACE_OPS_FL_IPMODIFY;
		hook->ops.private = hook->replacement;
		ret = ftrace_set_filter(&hook->ops, (unsigned char *)buf,
					strlen(buf), 1);
		if (ret) {
			pr_err("outsource: ftrace filter on %s: %d\n",
			       hook->name, ret);
			goto unhook;
		}
		ret = register_ftrace_function(&hook->ops);
		if (ret) {
			pr_err("outsource: hooking %s: %d\n", hook->name, ret);
			goto unhook;
		}
		hook->registered = true;
	}
	return 0;
unhook:
	kairos_outsource_unhook();
	return ret;
}

int kairos_outsource_init(void)
{
	char *cursor, *name;
	int ret;

	if (!outsource || !*outsource)
		return 0;
	if (!kairos_vmrpc_registered()) {
		pr_warn("outsource=%s ignored: the host has no timer ring\n",
			outsource);
		return 0;
	}
	kairos_outsource_buf = kstrdup(outsource, GFP_KERNEL);
	if (!kairos_outsource_buf)
		return -ENOMEM;
	cursor = kairos_outsource_buf;
	while ((name = strsep(&cursor, ",")) != NULL) {
		name = strim(name);
		if (!*name)
			continue;
		if (kairos_outsource_count == KAIROS_OUTSOURCE_MAX_NAMES) {
			pr_warn("outsource: more than %d names, ignoring %s and the rest\n",
				KAIROS_OUTSOURCE_MAX_NAMES, name);
			break;
		}
		kairos_outsource_names[kairos_outsource_count++] = name;
	}
	if (!kairos_outsource_count)
		goto free;

	ret = kairos_find_lookup_name();
	if (ret) {
		pr_err("outsource: cannot find kallsyms_lookup_name: %d\n", ret);
		goto free;
	}
	ret = register_module_notifier(&kairos_outsource_module_nb);
	if (ret)
		goto free;
	kairos_outsource_resolve();
	ret = kairos_outsource_hook();
	if (ret)
		goto unregister_notifier;
	kairos_outsource_active = true;
	pr_info("outsource: redirecting add_timer/mod_timer/del_timer/del_timer_sync for %u callback name(s)\n",
		kairos_outsource_count);
	return 0;

unregister_notifier:
	unregister_module_notifier(&kairos_outsource_module_nb);
free:
	kairos_outsource_count = 0;
	kfree(kairos_outsource_buf);
	kairos_outsource_buf = NULL;
	return ret;
}

/* Lock held, unloading: @timer's outsourced arming goes to the wheel. */
static void kairos_outsource_restore(struct timer_list *timer)
{
	if (timer->entry.pprev == &kairos_outsource_dummy)
		timer->entry.pprev = NULL;
	mod_timer(timer, timer->expires);
	atomic_long_inc(&kairos_outsource_stats.restored);
}

void kairos_outsource_exit(void)
{
	struct kairos_shadow *s;
	struct hlist_node *tmp;
	unsigned long flags;
	unsigned int bkt;

	if (!kairos_outsource_active)
		return;
	/* No new redirections, then none still on its way in. */
	kairos_outsource_unhook();
	unregister_module_notifier(&kairos_outsource_module_nb);
	while (atomic_read(&kairos_outsource_inflight))
		usleep_range(500, 1000);

	/* Armed outsourced timers go back to the kernel's timer wheel. */
	spin_lock_irqsave(&kairos_outsource_lock, flags);
	kairos_outsource_closing = true;	/* callbacks re-arm no more */
	hash_for_each(kairos_shadows, bkt, s, node)
		if (kairos_timer_del(&s->kt))
			kairos_outsource_restore(s->timer);
	spin_unlock_irqrestore(&kairos_outsource_lock, flags);

	hash_for_each_safe(kairos_shadows, bkt, tmp, s, node) {
		/* Waits for a running callback (it re-arms on the wheel). */
		if (kairos_timer_del_sync(&s->kt)) {
			spin_lock_irqsave(&kairos_outsource_lock, flags);
			kairos_outsource_restore(s->timer);
			spin_unlock_irqrestore(&kairos_outsource_lock, flags);
		}
		hash_del(&s->node);
		kfree(s);
	}
	if (atomic_long_read(&kairos_outsource_stats.restored))
		pr_info("outsource: %ld armed timers moved back to the kernel's timers\n",
			atomic_long_read(&kairos_outsource_stats.restored));
	kairos_outsource_active = false;
	kairos_outsource_closing = false;
	kairos_outsource_count = 0;
	kfree(kairos_outsource_buf);
	kairos_outsource_buf = NULL;
}

static int kairos_outsource_stats_get(char *buf, const struct kernel_param *kp)
{
	struct kairos_outsource_stats *st = &kairos_outsource_stats;

	return sysfs_emit(buf,
			  "active=%d armings=%ld fires=%ld deletes=%ld fallbacks=%ld early_rearms=%ld shadows=%ld restored=%ld\n",
			  READ_ONCE(kairos_outsource_active),
			  atomic_long_read(&st->armings),
			  atomic_long_read(&st->fires),
			  atomic_long_read(&st->deletes),
			  atomic_long_read(&st->fallbacks),
			  atomic_long_read(&st->early_rearms),
			  atomic_long_read(&st->shadows),
			  atomic_long_read(&st->restored));
}

static const struct kernel_param_ops kairos_outsource_stats_ops = {
	.get = kairos_outsource_stats_get,
};
module_param_cb(outsource_stats, &kairos_outsource_stats_ops, NULL, 0444);
MODULE_PARM_DESC(outsource_stats, "Counters of the transparent outsourcing");
