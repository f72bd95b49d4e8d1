// SPDX-License-Identifier: GPL-2.0
/*
 * A deliberately broken virtio-blk driver, for the guest test
 * test/integration/virtio-hostile.sh (issue 10: the guest is untrusted).
 *
 * It drives one virtio-mmio device's registers itself (version 2, virtio
 * 1.2 section 4.2.2; nothing else may have bound the device) and posts,
 * one at a time, the malformed requests a hostile guest could post:
 * descriptor loops, indices and addresses out of range, zero and huge
 * lengths, wrap-around, readable after writable buffers, avail indices that
 * jump, bad indirect tables, rings outside RAM, buffers on the Kairos
 * shared-info page, unknown request types and sectors past the disk. Each
 * case starts from a device reset and reports what the device did:
 *
 *   virtio-hostile: CASE=OUTCOME
 *
 * where OUTCOME is "needs-reset" (the device set DEVICE_NEEDS_RESET),
 * "ok", "ioerr", "unsupp" or "status-N" (the request completed with that
 * status), or "no-answer" (nothing within 2 s). A last, valid read of
 * sector 0 shows the device still serves the driver after all of it
 * ("valid-read=ok" and "marker=" the sector's first bytes). The verdicts
 * are the host test's. Parameters: base (the device's register page),
 * kairos_page (the shared-info page's address, 0: that case is skipped).
 */
#define pr_fmt(fmt) "virtio-hostile: " fmt

#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

static unsigned long base = 0xd0000000;
module_param(base, ulong, 0444);
MODULE_PARM_DESC(base, "guest-physical address of the virtio-mmio register page");
static unsigned long kairos_page;
module_param(kairos_page, ulong, 0444);
MODULE_PARM_DESC(kairos_page, "guest-physical address of the Kairos shared-info page (0: skip that case)");

#define QUEUE_SIZE 8
#define REGS_SIZE 0x1000
/* Four zeroed pages: descriptors, avail ring, used ring, request buffers. */
#define MEM_ORDER 2
#define DESC_OFF 0x0000
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000
#define HEADER_OFF 0x3000
#define INDIRECT_OFF 0x3100
#define DATA_OFF 0x3200
#define STATUS_OFF 0x3ff0
#define SECTOR_BYTES 512
/* Far past a small guest's RAM, below the 52-bit physical address limit. */
#define OUTSIDE_RAM (1ULL << 40)
#define ANSWER_WAIT_MS 2000

struct hostile {
	void __iomem *regs;
	void *mem;
	u64 phys;
	u16 avail_idx;
};

static u32 reg_read(struct hostile *h, unsigned int offset)
{
	return readl(h->regs + offset);
}

static void reg_write(struct hostile *h, unsigned int offset, u32 value)
{
	writel(value, h->regs + offset);
}

static void reg_write64(struct hostile *h, unsigned int low, u64 value)
{
	reg_write(h, low, lower_32_bits(value));
	reg_write(h, low + 4, upper_32_bits(value));
}

static int reset_device(struct hostile *h)
{
	int tries;

	reg_write(h, VIRTIO_MMIO_STATUS, 0);
	for (tries = 0; tries < 1000; tries++) {
		if (reg_read(h, VIRTIO_MMIO_STATUS) == 0)
			return 0;
		usleep_range(100, 200);
	}
	return -ETIMEDOUT;
}

static void add_status(struct hostile *h, u32 bits)
{
	reg_write(h, VIRTIO_MMIO_STATUS, reg_read(h, VIRTIO_MMIO_STATUS) | bits);
}

/*
 * From a reset device to DRIVER_OK with queue 0 at the given addresses,
 * as a well-behaved driver would (section 3.1.1), with VERSION_1 and
 * INDIRECT_DESC. The rings and buffers start zeroed, the status byte 0xff.
 */
static int start_device(struct hostile *h, u64 desc, u64 avail, u64 used)
{
	u64 features = BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC);

	if (reset_device(h))
		return -ETIMEDOUT;
	memset(h->mem, 0, PAGE_SIZE << MEM_ORDER);
	*(u8 *)(h->mem + STATUS_OFF) = 0xff;
	h->avail_idx = 0;
	add_status(h, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	add_status(h, VIRTIO_CONFIG_S_DRIVER);
	reg_write(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(h, VIRTIO_MMIO_DRIVER_FEATURES, lower_32_bits(features));
	reg_write(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(h, VIRTIO_MMIO_DRIVER_FEATURES, upper_32_bits(features));
	add_status(h, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(reg_read(h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EINVAL;
	reg_write(h, VIRTIO_MMIO_QUEUE_SEL, 0);
	if (reg_read(h, VIRTIO_MMIO_QUEUE_NUM_MAX) < QUEUE_SIZE)
		return -ENOSPC;
	reg_write(h, VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE);
	reg_write64(h, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	reg_write64(h, VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail);
	reg_write64(h, VIRTIO_MMIO_QUEUE_USED_LOW, used);
	reg_write(h, VIRTIO_MMIO_QUEUE_READY, 1);
	add_status(h, VIRTIO_CONFIG_S_DRIVER_OK);
	return 0;
}

static int start_default(struct hostile *h)
{
	return start_device(h, h->phys + DESC_OFF, h->phys + AVAIL_OFF, h->phys + USED_OFF);
}

static void set_desc(void *table, u16 index, u64 addr, u32 len, u16 flags, u16 next)
{
	struct vring_desc *desc = (struct vring_desc *)table + index;

	desc->addr = (__force __virtio64)cpu_to_le64(addr);
	desc->len = (__force __virtio32)cpu_to_le32(len);
	desc->flags = (__force __virtio16)cpu_to_le16(flags);
	desc->next = (__force __virtio16)cpu_to_le16(next);
}

static void *descs(struct hostile *h)
{
	return h->mem + DESC_OFF;
}

static void set_header(struct hostile *h, u32 type, u64 sector)
{
	struct virtio_blk_outhdr *header = h->mem + HEADER_OFF;

	header->type = (__force __virtio32)cpu_to_le32(type);
	header->ioprio = 0;
	header->sector = (__force __virtio64)cpu_to_le64(sector);
}

/* Publishes avail index `idx` (ring entry idx - 1 names `head`), notifies. */
static void publish(struct hostile *h, u16 head, u16 idx)
{
	struct vring_avail *avail = h->mem + AVAIL_OFF;

	avail->ring[(u16)(idx - 1) % QUEUE_SIZE] = (__force __virtio16)cpu_to_le16(head);
	/* The entry before the index, the index before the notification. */
	wmb();
	avail->idx = (__force __virtio16)cpu_to_le16(idx);
	mb();
	reg_write(h, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void post(struct hostile *h, u16 head)
{
	h->avail_idx++;
	publish(h, head, h->avail_idx);
}

/* header, data, status: the usual three-descriptor request at head 0. */
static void post_request(struct hostile *h, u32 type, u64 sector, u64 data, u32 data_len)
{
	u16 data_flags = VRING_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0);

	set_header(h, type, sector);
	set_desc(descs(h), 0, h->phys + HEADER_OFF, sizeof(struct virtio_blk_outhdr), VRING_DESC_F_NEXT, 1);
	set_desc(descs(h), 1, data, data_len, data_flags, 2);
	set_desc(descs(h), 2, h->phys + STATUS_OFF, 1, VRING_DESC_F_WRITE, 0);
	post(h, 0);
}

static const char *outcome(struct hostile *h)
{
	static char status_text[16];
	struct vring_used *used = h->mem + USED_OFF;
	int waited;
	u8 status;

	for (waited = 0; waited < ANSWER_WAIT_MS; waited++) {
		if (reg_read(h, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)
			return "needs-reset";
		if (READ_ONCE(used->idx) != 0) {
			rmb();
			status = READ_ONCE(*(u8 *)(h->mem + STATUS_OFF));
			switch (status) {
			case VIRTIO_BLK_S_OK:
				return "ok";
			case VIRTIO_BLK_S_IOERR:
				return "ioerr";
			case VIRTIO_BLK_S_UNSUPP:
				return "unsupp";
			}
			snprintf(status_text, sizeof(status_text), "status-%u", status);
			return status_text;
		}
		msleep(1);
	}
	return "no-answer";
}

static void report(struct hostile *h, const char *name, int started)
{
	if (started)
		pr_info("%s=start-failed-%d\n", name, started);
	else
		pr_info("%s=%s\n", name, outcome(h));
	reg_write(h, VIRTIO_MMIO_INTERRUPT_ACK, reg_read(h, VIRTIO_MMIO_INTERRUPT_STATUS));
}

/* Each case: a fresh device, one malformed request, what the device did. */
static void case_loop(struct hostile *h)
{
	int started = start_default(h);

	set_header(h, VIRTIO_BLK_T_IN, 0);
	set_desc(descs(h), 0, h->phys + HEADER_OFF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(descs(h), 1, h->phys + DATA_OFF, SECTOR_BYTES, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	post(h, 0);
	report(h, "loop", started);
}

static void case_next_out_of_range(struct hostile *h)
{
	int started = start_default(h);

	set_header(h, VIRTIO_BLK_T_IN, 0);
	set_desc(descs(h), 0, h->phys + HEADER_OFF, 16, VRING_DESC_F_NEXT, 200);
	post(h, 0);
	report(h, "next-out-of-range", started);
}

static void case_head_out_of_range(struct hostile *h)
{
	int started = start_default(h);

	post(h, 9);
	report(h, "head-out-of-range", started);
}

static void case_zero_length(struct hostile *h)
{
	int started = start_default(h);

	post_request(h, VIRTIO_BLK_T_IN, 0, h->phys + DATA_OFF, 0);
	report(h, "zero-length", started);
}

static void case_outside_ram(struct hostile *h)
{
	int started = start_default(h);

	post_request(h, VIRTIO_BLK_T_IN, 0, OUTSIDE_RAM, SECTOR_BYTES);
	report(h, "outside-ram", started);
}

static void case_huge_length(struct hostile *h)
{
	int started = start_default(h);

	post_request(h, VIRTIO_BLK_T_IN, 0, h->phys + DATA_OFF, 0xfffffe00);
	report(h, "huge-length", started);
}

static void case_wraps(struct hostile *h)
{
	int started = start_default(h);

	post_request(h, VIRTIO_BLK_T_IN, 0, 0xfffffffffffff000ULL, 0x2000);
	report(h, "wraps", started);
}

static void case_readable_after_writable(struct hostile *h)
{
	int started = start_default(h);

	set_header(h, VIRTIO_BLK_T_OUT, 0);
	set_desc(descs(h), 0, h->phys + HEADER_OFF, 16, VRING_DESC_F_NEXT, 1);
	set_desc(descs(h), 1, h->phys + STATUS_OFF, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(descs(h), 2, h->phys + DATA_OFF, SECTOR_BYTES, 0, 0);
	post(h, 0);
	report(h, "readable-after-writable", started);
}

static void case_avail_jump(struct hostile *h)
{
	int started = start_default(h);

	set_desc(descs(h), 0, h->phys + HEADER_OFF, 16, 0, 0);
	publish(h, 0, 1000);
	report(h, "avail-jump", started);
}

static void case_indirect_bad_size(struct hostile *h)
{
	int started = start_default(h);

	set_desc(descs(h), 0, h->phys + INDIRECT_OFF, 20, VRING_DESC_F_INDIRECT, 0);
	post(h, 0);
	report(h, "indirect-bad-size", started);
}

static void case_indirect_nested(struct hostile *h)
{
	void *table = h->mem + INDIRECT_OFF;
	int started = start_default(h);

	set_desc(table, 0, h->phys + INDIRECT_OFF, 32, VRING_DESC_F_INDIRECT, 0);
	set_desc(table, 1, h->phys + STATUS_OFF, 1, VRING_DESC_F_WRITE, 0);
	set_desc(descs(h), 0, h->phys + INDIRECT_OFF, 32, VRING_DESC_F_INDIRECT, 0);
	post(h, 0);
	report(h, "indirect-nested", started);
}

static void case_ring_outside_ram(struct hostile *h)
{
	int started = start_device(h, OUTSIDE_RAM, h->phys + AVAIL_OFF, h->phys + USED_OFF);

	report(h, "ring-outside-ram", started);
}

static void case_kairos_page(struct hostile *h)
{
	int started;

	if (!kairos_page) {
		pr_info("kairos-page=skipped\n");
		return;
	}
	started = start_default(h);
	/* A read would have the device write the page the host publishes. */
	post_request(h, VIRTIO_BLK_T_IN, 0, kairos_page, SECTOR_BYTES);
	report(h, "kairos-page", started);
}

static void case_bad_type(struct hostile *h)
{
	int started = start_default(h);

	post_request(h, 99, 0, h->phys + DATA_OFF, SECTOR_BYTES);
	report(h, "bad-type", started);
}

static void case_read_past_end(struct hostile *h)
{
	int started = start_default(h);

	post_request(h, VIRTIO_BLK_T_IN, 1ULL << 40, h->phys + DATA_OFF, SECTOR_BYTES);
	report(h, "read-past-end", started);
}

static void case_write_past_end(struct hostile *h)
{
	int started = start_default(h);
	/* capacity in sectors, section 5.2.4; two 32-bit reads, as drivers do */
	u64 capacity = reg_read(h, VIRTIO_MMIO_CONFIG) | (u64)reg_read(h, VIRTIO_MMIO_CONFIG + 4) << 32;

	memset(h->mem + DATA_OFF, 0xa5, SECTOR_BYTES);
	/* Starts on the last sector, ends one past it. */
	post_request(h, VIRTIO_BLK_T_OUT, capacity - 1, h->phys + DATA_OFF, 2 * SECTOR_BYTES);
	report(h, "write-past-end", started);
}

static void case_valid_read(struct hostile *h)
{
	int started = start_default(h);
	char marker[17];

	post_request(h, VIRTIO_BLK_T_IN, 0, h->phys + DATA_OFF, SECTOR_BYTES);
	report(h, "valid-read", started);
	memcpy(marker, h->mem + DATA_OFF, 16);
	marker[16] = '\0';
	pr_info("marker=%s\n", marker);
}

static void (*const cases[])(struct hostile *h) = {
	case_loop,
	case_next_out_of_range,
	case_head_out_of_range,
	case_zero_length,
	case_outside_ram,
	case_huge_length,
	case_wraps,
	case_readable_after_writable,
	case_avail_jump,
	case_indirect_bad_size,
	case_indirect_nested,
	case_ring_outside_ram,
	case_kairos_page,
	case_bad_type,
	case_read_past_end,
	case_write_past_end,
	case_valid_read,
};

static int check_device(struct hostile *h)
{
	if (reg_read(h, VIRTIO_MMIO_MAGIC_VALUE) != 0x74726976 || reg_read(h, VIRTIO_MMIO_VERSION) != 2 ||
	    reg_read(h, VIRTIO_MMIO_DEVICE_ID) != 2) {
		pr_info("device=not-a-virtio-blk\n");
		return -ENODEV;
	}
	return 0;
}

static int __init virtio_hostile_init(void)
{
	struct hostile h = {};
	struct page *pages;
	size_t i;
	int err = 0;

	if (!request_mem_region(base, REGS_SIZE, "virtio-hostile")) {
		pr_info("device=busy\n");
		return -EBUSY;
	}
	h.regs = ioremap(base, REGS_SIZE);
	pages = alloc_pages(GFP_KERNEL | __GFP_ZERO, MEM_ORDER);
	if (!h.regs || !pages) {
		err = -ENOMEM;
		goto out;
	}
	h.mem = page_address(pages);
	h.phys = page_to_phys(pages);
	err = check_device(&h);
	if (err)
		goto out;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		cases[i](&h);
	/*
	 * Nothing of ours stays with the device once we are gone; a device that
	 * will not reset keeps its pages (leaked, never reused under it).
	 */
	if (reset_device(&h)) {
		pr_info("final-reset=failed\n");
		pages = NULL;
	}
	pr_info("done=%zu\n", ARRAY_SIZE(cases));
out:
	if (pages)
		__free_pages(pages, MEM_ORDER);
	if (h.regs)
		iounmap(h.regs);
	release_mem_region(base, REGS_SIZE);
	return err;
}
module_init(virtio_hostile_init);

/* Everything was undone at load: nothing to do at unload. */
static void __exit virtio_hostile_exit(void)
{
}
module_exit(virtio_hostile_exit);

MODULE_DESCRIPTION("A hostile virtio-blk driver for Kairos's tests");
MODULE_LICENSE("GPL");
