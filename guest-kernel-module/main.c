// SPDX-License-Identifier: GPL-2.0
/*
 * The guest side of the Kairos paravirtual interface (kairos.ko).
 *
 * Finds the monitor through CPUID, registers a shared-info page with it,
 * and builds on that page: the "kairos" clocksource (clock.c), event
 * channels (events.c), outsourced timers (vmrpc.c), /dev/kairos
 * (device.c) and /sys/kernel/kairos (sysfs.c). The ABI is
 * kairos_abi.h; the API for other modules is kairos.h.
 */
#define pr_fmt(fmt) "kairos: " fmt

#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/limits.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <asm/cpufeature.h>
#include <asm/processor.h>
#include <asm/smp.h>

#include "internal.h"

/* How long to wait for the monitor's first time publication. */
#define KAIROS_PUBLISH_WAIT_MS 1000

struct kairos_state kairos;

/*
 * The command registers are shared by all vCPUs, so a command is one
 * critical section. Raw and irqsave: commands are sent from any context,
 * including the panic notifier.
 */
static DEFINE_RAW_SPINLOCK(kairos_command_lock);

static s32 kairos_command_locked(u32 cmd, u32 arg0, u32 arg1)
{
	outl(arg0, kairos.io_base + KAIROS_PORT_ARG0);
	outl(arg1, kairos.io_base + KAIROS_PORT_ARG1);
	outl(cmd, kairos.io_base + KAIROS_PORT_COMMAND);
	return (s32)inl(kairos.io_base + KAIROS_PORT_STATUS);
}

int kairos_command(u32 cmd, u32 arg0, u32 arg1)
{
	unsigned long flags;
	s32 status;

	raw_spin_lock_irqsave(&kairos_command_lock, flags);
	status = kairos_command_locked(cmd, arg0, arg1);
	raw_spin_unlock_irqrestore(&kairos_command_lock, flags);
	return status;
}

static ssize_t abi_version_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", kairos.abi_version);
}

static ssize_t shared_info_gpa_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", (unsigned long long)kairos.shared_gpa);
}

static struct kobj_attribute abi_version_attr = __ATTR_RO(abi_version);
static struct kobj_attribute shared_info_gpa_attr = __ATTR_RO(shared_info_gpa);

static struct attribute *kairos_main_attrs[] = {
	&abi_version_attr.attr,
	&shared_info_gpa_attr.attr,
	NULL,
};

const struct attribute_group kairos_main_attr_group = {
	.attrs = kairos_main_attrs,
};

int kairos_status_to_errno(int status)
{
	switch (status) {
	case KAIROS_OK:
		return 0;
	case KAIROS_EINVAL:
		return -EINVAL;
	case KAIROS_ERANGE:
		return -ERANGE;
	case KAIROS_EBUSY:
		return -EBUSY;
	case KAIROS_ENOENT:
		return -ENOENT;
	case KAIROS_ENOSYS:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

/*
 * The host knows a vCPU by its APIC id (kairos_abi.h: request.vcpu,
 * KAIROS_CMD_SET_UPCALL_VCPU); KAIROS_VCPU_ANY if it does not fit.
 */
u16 kairos_cpu_to_vcpu(unsigned int cpu)
{
	u32 apic_id = cpu_physical_id(cpu);

	return apic_id < KAIROS_VCPU_ANY ? apic_id : KAIROS_VCPU_ANY;
}

/*
 * CPUID KAIROS_CPUID_SIGNATURE: "KairosKairos" in EBX:ECX:EDX and the
 * highest Kairos leaf in EAX; KAIROS_CPUID_INFO: ABI version, I/O port
 * base, upcall IRQ (kairos_abi.h).
 */
static int kairos_discover(void)
{
	char signature[12];
	u32 eax, ebx, ecx, edx;

	if (!boot_cpu_has(X86_FEATURE_HYPERVISOR)) {
		pr_err("no hypervisor (CPUID hypervisor bit clear), not loading\n");
		return -ENODEV;
	}

	cpuid(KAIROS_CPUID_SIGNATURE, &eax, &ebx, &ecx, &edx);
	memcpy(signature, &ebx, 4);
	memcpy(signature + 4, &ecx, 4);
	memcpy(signature + 8, &edx, 4);
	if (memcmp(signature, KAIROS_SIGNATURE, sizeof(signature)) ||
	    eax < KAIROS_CPUID_INFO) {
		pr_err("no Kairos monitor: CPUID 0x%x signature \"%*pE\", max leaf 0x%x\n",
		       KAIROS_CPUID_SIGNATURE, (int)sizeof(signature),
		       signature, eax);
		return -ENODEV;
	}

	cpuid(KAIROS_CPUID_INFO, &eax, &ebx, &ecx, &edx);
	if (eax != KAIROS_EXPECTED_ABI_VERSION) {
		pr_err("host ABI version %u, module built for %u\n", eax,
		       KAIROS_EXPECTED_ABI_VERSION);
		return -ENODEV;
	}
	if (!ebx || ebx > U16_MAX - KAIROS_PORT_COUNT + 1) {
		pr_err("host gave an invalid I/O port base 0x%x\n", ebx);
		return -ENODEV;
	}
	/* An ISA IRQ routed through the IOAPIC; 2 is the PIC cascade. */
	if (!ecx || ecx == 2 || ecx >= 16) {
		pr_err("host gave an invalid upcall IRQ %u\n", ecx);
		return -ENODEV;
	}

	kairos.abi_version = eax;
	kairos.io_base = ebx;
	kairos.gsi = ecx;
	return 0;
}

/*
 * The monitor fills the page when it is registered, or soon after. Ask it
 * to publish the time once, then wait for the first publication.
 */
static int kairos_wait_for_host(void)
{
	struct kairos_shared_info *shared = kairos.shared;
	unsigned int waited;
	u32 version;

	for (waited = 0; !READ_ONCE(shared->publish_count); waited++) {
		if (waited == 0)
			kairos_command(KAIROS_CMD_REFRESH_TIME, 0, 0);
		if (waited == KAIROS_PUBLISH_WAIT_MS) {
			pr_err("host did not publish the time within %u ms\n",
			       KAIROS_PUBLISH_WAIT_MS);
			return -ETIMEDOUT;
		}
		usleep_range(1000, 2000);
	}

	version = READ_ONCE(shared->abi_version);
	if (version != KAIROS_EXPECTED_ABI_VERSION) {
		pr_err("host wrote ABI version %u to the shared page, module built for %u\n",
		       version, KAIROS_EXPECTED_ABI_VERSION);
		return -EPROTO;
	}
	return 0;
}

static int kairos_shared_info_init(void)
{
	struct page *page;
	unsigned long pfn;
	int status;
	int ret;

	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
	pfn = page_to_pfn(page);
	if (pfn > U32_MAX) {
		pr_err("shared-info page frame 0x%lx does not fit the 32-bit argument\n",
		       pfn);
		ret = -ENOMEM;
		goto free_page;
	}
	kairos.shared = page_address(page);
	kairos.shared_gpa = page_to_phys(page);
	/* No port is delivered before it is bound (events.c). */
	kairos_events_mask_all();

	status = kairos_command(KAIROS_CMD_REGISTER_SHARED_INFO, pfn, 0);
	if (status != KAIROS_OK) {
		pr_err("host refused the shared-info page at %pa: status %d\n",
		       &kairos.shared_gpa, status);
		ret = kairos_status_to_errno(status);
		goto free_page;
	}

	ret = kairos_wait_for_host();
	if (ret)
		goto unregister;
	return 0;

unregister:
	kairos_command(KAIROS_CMD_UNREGISTER_SHARED_INFO, 0, 0);
free_page:
	kairos.shared = NULL;
	__free_page(page);
	return ret;
}

static void kairos_shared_info_exit(void)
{
	int status;

	/* The monitor must stop writing before the page is reused. */
	status = kairos_command(KAIROS_CMD_UNREGISTER_SHARED_INFO, 0, 0);
	if (status != KAIROS_OK) {
		/* Leak the page rather than let the host scribble on it. */
		pr_err("host refused to unregister the shared-info page: status %d; leaking it\n",
		       status);
		return;
	}
	free_page((unsigned long)kairos.shared);
	kairos.shared = NULL;
}

/*
 * Tell the monitor the guest is panicking, so that it reports a panic
 * rather than a mere reset. Other CPUs were stopped by now, perhaps one
 * inside a command: wait for the lock a little, then go ahead without it.
 */
static int kairos_panic_notify(struct notifier_block *nb, unsigned long event,
			       void *message)
{
	bool locked = false;
	int i;

	for (i = 0; i < 1000 && !locked; i++) {
		locked = raw_spin_trylock(&kairos_command_lock);
		if (!locked)
			udelay(1);
	}
	kairos_command_locked(KAIROS_CMD_GUEST_PANIC, 0, 0);
	if (locked)
		raw_spin_unlock(&kairos_command_lock);
	return NOTIFY_DONE;
}

/*
 * Last of the panic notifiers: those that print (e.g. a trace dump) have
 * run when the monitor hears of the panic.
 */
static struct notifier_block kairos_panic_notifier = {
	.notifier_call = kairos_panic_notify,
	.priority = INT_MIN,
};

static int __init kairos_init(void)
{
	int ret;

	ret = kairos_discover();
	if (ret)
		return ret;

	if (!request_region(kairos.io_base, KAIROS_PORT_COUNT, "kairos")) {
		pr_err("I/O ports 0x%x-0x%x are in use\n", kairos.io_base,
		       kairos.io_base + KAIROS_PORT_COUNT - 1);
		return -EBUSY;
	}

	ret = kairos_shared_info_init();
	if (ret)
		goto release_region;
	ret = kairos_clock_init();
	if (ret)
		goto shared_info_exit;
	ret = kairos_events_init();
	if (ret)
		goto clock_exit;
	ret = kairos_vmrpc_init();
	if (ret)
		goto events_exit;
	ret = kairos_device_init();
	if (ret)
		goto vmrpc_exit;
	ret = kairos_sysfs_init();
	if (ret)
		goto device_exit;
	ret = kairos_outsource_init();
	if (ret)
		goto sysfs_exit;
	atomic_notifier_chain_register(&panic_notifier_list,
				       &kairos_panic_notifier);

	pr_info("ABI %u, ports 0x%x, upcall GSI %u (IRQ %u, vCPU %d), shared info at %pa\n",
		kairos.abi_version, kairos.io_base, kairos.gsi, kairos.irq,
		kairos.upcall_vcpu, &kairos.shared_gpa);
	return 0;

sysfs_exit:
	kairos_sysfs_exit();
device_exit:
	kairos_device_exit();
vmrpc_exit:
	kairos_vmrpc_exit();
events_exit:
	kairos_events_exit();
clock_exit:
	kairos_clock_exit();
shared_info_exit:
	kairos_shared_info_exit();
release_region:
	release_region(kairos.io_base, KAIROS_PORT_COUNT);
	return ret;
}

static void __exit kairos_exit(void)
{
	atomic_notifier_chain_unregister(&panic_notifier_list,
					 &kairos_panic_notifier);
	kairos_outsource_exit();
	kairos_sysfs_exit();
	kairos_device_exit();
	kairos_vmrpc_exit();
	kairos_events_exit();
	kairos_clock_exit();
	kairos_shared_info_exit();
	release_region(kairos.io_base, KAIROS_PORT_COUNT);
}

module_init(kairos_init);
module_exit(kairos_exit);

MODULE_DESCRIPTION("Kairos paravirtual clock, event channels and timers");
MODULE_LICENSE("GPL");
