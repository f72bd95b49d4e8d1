/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * kairos_abi.h - the one guest/host ABI of Kairos.
 *
 * Included by the VMM (C++) and by kairos.ko (kernel C). Plain C with
 * fixed-width types and explicit padding; every size and offset is pinned
 * by a static assertion at the end, so neither side can drift.
 *
 * Discovery: CPUID leaf KAIROS_CPUID_SIGNATURE returns the highest Kairos
 * leaf in EAX and "KairosKairos" in EBX:ECX:EDX; leaf KAIROS_CPUID_INFO
 * returns the ABI version in EAX, the I/O port base in EBX and the upcall
 * IRQ line (an ISA IRQ routed through the IOAPIC) in ECX.
 *
 * Commands: the guest writes 32-bit arguments to KAIROS_PORT_ARG0/ARG1,
 * then the command number to KAIROS_PORT_COMMAND, then reads the result
 * (KAIROS_OK or a negative KAIROS_E* code) from KAIROS_PORT_STATUS. The
 * registers are shared by all vCPUs: the guest serialises commands.
 */
#ifndef KAIROS_ABI_H
#define KAIROS_ABI_H

#include <linux/types.h>
#ifdef __KERNEL__
#include <linux/stddef.h>
#else
#include <stddef.h>
#endif

#ifdef __cplusplus
#define KAIROS_ABI_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define KAIROS_ABI_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/*
 * Bumped on any incompatible change; kairos.ko refuses a mismatch.
 * 2: requests name a vCPU; the guest reports timer work done (priority
 *    windows) and may steer the upcall; the host may fire early (advance).
 */
#define KAIROS_ABI_VERSION 2

#define KAIROS_CPUID_SIGNATURE 0x40000100u
#define KAIROS_CPUID_INFO 0x40000101u
#define KAIROS_SIGNATURE "KairosKairos"

/* Port offsets from the base in CPUID KAIROS_CPUID_INFO.EBX; 32-bit access. */
#define KAIROS_PORT_COMMAND 0x00	/* write: a KAIROS_CMD_* */
#define KAIROS_PORT_ARG0 0x04		/* write: first argument */
#define KAIROS_PORT_ARG1 0x08		/* write: second argument */
#define KAIROS_PORT_STATUS 0x0c		/* read: result of the last command */
#define KAIROS_PORT_DOORBELL 0x10	/* write: VMRPC doorbell (no exit) */
#define KAIROS_PORT_ACK 0x14		/* write: timer events handled */
/*
 * Clock samples, for measuring drift with an independent ruler: write the
 * low and high halves of a guest clock reading (ns), then a tag; the tag
 * write makes the host record (its CLOCK_MONOTONIC now, the reading) under
 * that tag. One VM exit per sample, so the host's timestamp is taken within
 * microseconds of the guest's reading.
 */
#define KAIROS_PORT_SAMPLE_LO 0x18
#define KAIROS_PORT_SAMPLE_HI 0x1c
#define KAIROS_PORT_SAMPLE_TAG 0x20
/*
 * Timer work done (no exit: a KVM ioeventfd): the guest wrote a new
 * kairos_ring_header.work_done. The host then ends the priority window it
 * opened for that work, one lead later unless a deadline is armed by then
 * (see "Priority windows" below).
 */
#define KAIROS_PORT_DONE 0x24
#define KAIROS_PORT_COUNT 0x28		/* size of the port range */
#define KAIROS_SAMPLE_TAGS 16		/* tags 0..15 */

/* Commands. */
#define KAIROS_CMD_REGISTER_SHARED_INFO 1	/* ARG0: page frame number */
#define KAIROS_CMD_UNREGISTER_SHARED_INFO 2
#define KAIROS_CMD_REGISTER_RING 3		/* ARG0: first PFN, ARG1: pages */
#define KAIROS_CMD_UNREGISTER_RING 4
#define KAIROS_CMD_RAISE_DEBUG 5		/* host raises KAIROS_EVENT_DEBUG */
#define KAIROS_CMD_GUEST_PANIC 6		/* the guest is panicking */
#define KAIROS_CMD_REFRESH_TIME 7		/* re-publish time now */
/*
 * ARG0: APIC id of the vCPU the guest routed the upcall IRQ to (it set the
 * IRQ's affinity to that one CPU). Priority windows then cover that vCPU,
 * which runs the completion tasklet, besides the one each request names.
 * Until the guest says, the host assumes APIC id 0.
 */
#define KAIROS_CMD_SET_UPCALL_VCPU 8

/* Command results (KAIROS_PORT_STATUS). */
#define KAIROS_OK 0
#define KAIROS_EINVAL (-1)	/* bad argument (unaligned, zero, too many pages) */
#define KAIROS_ERANGE (-2)	/* address outside guest RAM */
#define KAIROS_EBUSY (-3)	/* overlaps another registered area */
#define KAIROS_ENOENT (-4)	/* nothing registered */
#define KAIROS_ENOSYS (-5)	/* unknown command */

#define KAIROS_PAGE_SIZE 4096
#define KAIROS_MAX_VCPUS 64

/* Event channel ports: 2-level bitmaps, 8 words of 64 bits. */
#define KAIROS_EVENT_WORDS 8
#define KAIROS_EVENT_PORTS (KAIROS_EVENT_WORDS * 64)
/* Virtual interrupts the monitor generates (Xen's VIRQs). */
#define KAIROS_EVENT_VIRTUAL_TIMER 1
#define KAIROS_EVENT_CONSOLE 2
#define KAIROS_EVENT_DEBUG 3
#define KAIROS_EVENT_TIMER_EXPIRED 4	/* outsourced timers (VMRPC) */
#define KAIROS_EVENT_FIRST_FREE 16	/* ports other modules may bind */

/*
 * Per-vCPU system time, in the pvclock layout (Linux pvclock-abi.h):
 * time_ns = system_time + scale(rdtsc() - tsc_timestamp), with
 * scale(d) = ((shift < 0 ? d >> -shift : d << shift) * mul) >> 32.
 * system_time is the host's CLOCK_MONOTONIC in ns. version is odd while
 * the host writes: readers retry until they see the same even version
 * before and after reading.
 */
struct kairos_vcpu_time_info {
	__u32 version;
	__u32 pad0;
	__u64 tsc_timestamp;
	__u64 system_time;
	__u32 tsc_to_system_mul;
	__s8 tsc_shift;
	__u8 flags;
	__u8 pad[2];
};

/*
 * The host's promise: a vCPU's records continue one another. From a new
 * record's tsc_timestamp until 1 ms after the host read the TSC for it
 * (it publishes within microseconds), the new record gives a time at
 * least what the one it replaces gives, so a reader that stays on one
 * vCPU never sees time go back, and time only ever steps forward. The gap
 * to CLOCK_MONOTONIC is closed by slewing the rate (at most 500 ppm), or
 * by a step forward when more than 500 us behind.
 *
 * KAIROS_TIME_TSC_STABLE: every vCPU has the same TSC and gets the same
 * record, which is what lets a reader skip a cross-vCPU monotonic guard
 * (kairos.ko does). One exception: the host writes the records one vCPU
 * after another, and while it does (microseconds) a reader moving from a
 * vCPU with the new record to one with the old may see time go back by
 * what the new line starts ahead of the old: ns in steady state, up to
 * 1 us when the rate changes by 1000 ppm, or all of a step forward.
 */
#define KAIROS_TIME_TSC_STABLE (1u << 0)	/* same TSC on every vCPU */

struct kairos_shared_info {
	__u32 abi_version;	/* KAIROS_ABI_VERSION, written by the host */
	__u32 vcpu_count;
	__u64 publish_count;	/* how often the host published time */

	/* Wall clock at system time zero (CLOCK_REALTIME - CLOCK_MONOTONIC). */
	__u32 wc_version;	/* odd while the host writes */
	__u32 wc_nsec;
	__u64 wc_sec;

	/*
	 * Events. The host sets pending[P], then, if mask[P] is clear,
	 * pending_sel bit (P / 64) and upcall_pending, and injects the upcall
	 * IRQ unless upcall_mask is set. The guest clears upcall_pending,
	 * then scans pending_sel and the pending words with atomic
	 * test-and-clear; after clearing upcall_mask or a port's mask it
	 * re-checks the pending bits itself, so nothing is lost.
	 */
	__u8 upcall_pending;
	__u8 upcall_mask;
	__u8 pad1[6];
	__u64 pending_sel;
	__u64 pending[KAIROS_EVENT_WORDS];
	__u64 mask[KAIROS_EVENT_WORDS];
	__u64 pad2[10];

	struct kairos_vcpu_time_info time[KAIROS_MAX_VCPUS];
	/* Nanoseconds each vCPU was runnable but not running on the host. */
	__u64 stolen_ns[KAIROS_MAX_VCPUS];

	__u8 reserved[KAIROS_PAGE_SIZE - 0x100 - 32 * KAIROS_MAX_VCPUS - 8 * KAIROS_MAX_VCPUS];
};

/*
 * VMRPC: outsourced timers. The guest registers KAIROS_RING_PAGES pages
 * (KAIROS_CMD_REGISTER_RING, ARG0 = first PFN, ARG1 = KAIROS_RING_PAGES):
 * page 0 is the header, page 1 the request ring (guest -> host), pages 2-3
 * the completion ring (host -> guest). Indices are free-running 32-bit
 * counters; slot = index % entries. A producer writes the entry, then
 * publishes the index with release ordering; a consumer reads the index with
 * acquire ordering, then the entries. The guest rings KAIROS_PORT_DOORBELL
 * after publishing requests unless host_polling is set; one doorbell covers
 * every request published so far. host_polling is set while the host drains
 * the ring; the guest publishes its index, issues a full barrier, then reads
 * the flag; the host clears the flag, issues a full barrier, then reads the
 * index once more, so a request is always either seen or rung for. The host never trusts an index: a
 * producer index more than `entries` ahead of the consumer is a guest error:
 * nothing is consumed, and the doorbell is answered with one
 * KAIROS_TIMER_EBADINDEX error completion (timer_id 0, which no timer has).
 * When the completion ring is full, expiries are kept by the host and
 * KAIROS_EVENT_TIMER_EXPIRED stays raised; they are delivered once the guest
 * consumes (nothing is lost, they arrive late).
 *
 * Ports that wake the host's timer thread are written only when the host
 * asks (ABI 2): KAIROS_PORT_ACK while host_wants_ack is set (it holds
 * completions), KAIROS_PORT_DONE while host_wants_done is set (a priority
 * window is open). Each wake-up of a real-time timer thread preempts
 * whatever runs on that CPU, the guest's own vCPU included, which then
 * queues behind the host's load. The guest publishes its index (or
 * work_done), issues a full barrier, then reads the flag; the host sets the
 * flag, issues a full barrier, then reads the index once more, so a report
 * is never both unwritten and unseen.
 */
#define KAIROS_RING_PAGES 4
#define KAIROS_RING_REQUESTS 256	/* one page of 16-byte requests */
#define KAIROS_RING_COMPLETIONS 512	/* two pages of 16-byte completions */

/*
 * Priority windows (DESIGN.md 5, ABI 2). Kairos knows every deadline before
 * it expires; some lead time before one, the host gives the vCPU threads
 * that will run the timer's work a bounded real-time reservation, and takes
 * it back when the guest reports the work done (one lead later, unless the
 * guest arms a deadline due soon meanwhile), or after a host timeout.
 * The vCPUs covered: the one the request names (kairos_timer_request.vcpu,
 * the APIC id of the CPU whose task consumes the expiry) and the upcall
 * vCPU (KAIROS_CMD_SET_UPCALL_VCPU).
 *
 * "Done": kairos_ring_header.work_done counts, free-running, the expiries
 * (EXPIRED completions) whose consumer has run: the callback returned, or,
 * for a sleeper, the woken task is on its way back to user space. Stale
 * expiries count as done when the guest drops them. The guest increments it
 * with release ordering, then writes KAIROS_PORT_DONE. The host never
 * trusts it: a count ahead of what it delivered counts as nothing owed.
 *
 * Advance: the host may fire a timer up to KAIROS_MAX_ADVANCE_NS before its
 * deadline (learned from the guest's reports, as KVM's adaptive
 * lapic_timer_advance_ns); the guest then waits in its completion path, by
 * the shared clock, until the deadline. A callback never runs early. The
 * guest reports, in arrival_ns, when the last expiry reached its completion
 * handler relative to the deadline (negative: early, before any wait).
 */
#define KAIROS_MAX_ADVANCE_NS 500000
#define KAIROS_VCPU_ANY 0xffff	/* request.vcpu: no particular vCPU */

#define KAIROS_TIMER_ADD 1	/* arm timer_id at deadline_ns (re-arms if armed) */
#define KAIROS_TIMER_MOD 2	/* same as ADD; kept apart for statistics */
#define KAIROS_TIMER_DEL 3	/* cancel timer_id */

struct kairos_timer_request {
	__u16 op;		/* KAIROS_TIMER_* */
	__u16 vcpu;		/* APIC id of the consumer's vCPU, or KAIROS_VCPU_ANY */
	__u32 timer_id;
	__u64 deadline_ns;	/* absolute system time (host CLOCK_MONOTONIC) */
};

#define KAIROS_COMPLETION_EXPIRED 1	/* timer_id expired at time_ns */
#define KAIROS_COMPLETION_ERROR 2	/* a request failed: result says why */

#define KAIROS_TIMER_EQUOTA (-6)	/* more timers than outsourcing.max_timers */
#define KAIROS_TIMER_EBADOP (-7)	/* unknown op */
#define KAIROS_TIMER_ENOENT (-8)	/* DEL of a timer that is not armed */
#define KAIROS_TIMER_EBADINDEX (-9)	/* request_producer was nonsense (timer_id 0) */
#define KAIROS_TIMER_EBADVCPU (-10)	/* vcpu is neither a vCPU's APIC id nor ANY */

struct kairos_timer_completion {
	__u32 timer_id;
	__u16 kind;		/* KAIROS_COMPLETION_* */
	__s16 result;		/* 0, or KAIROS_TIMER_E* for an error */
	__u64 time_ns;		/* expiry: host time it fired; error: the request's deadline */
};

struct kairos_ring_header {
	__u32 request_producer;		/* written by the guest */
	__u32 pad0[15];
	__u32 request_consumer;		/* written by the host */
	__u32 host_polling;		/* host: nonzero while it drains (no doorbell needed) */
	__u32 host_wants_ack;		/* host: nonzero while it holds completions */
	__u32 host_wants_done;		/* host: nonzero while a priority window is open */
	__u32 pad1[12];
	__u32 completion_producer;	/* written by the host */
	__u32 pad2[15];
	__u32 completion_consumer;	/* written by the guest */
	__u32 work_done;		/* guest: expiries whose consumer ran (see above) */
	__s32 arrival_ns;		/* guest: last expiry's arrival minus its deadline */
	__u32 pad3[13];
	__u8 reserved[KAIROS_PAGE_SIZE - 256];
};

KAIROS_ABI_ASSERT(sizeof(struct kairos_vcpu_time_info) == 32, "pvclock record is 32 bytes");
KAIROS_ABI_ASSERT(offsetof(struct kairos_vcpu_time_info, version) == 0, "version");
KAIROS_ABI_ASSERT(offsetof(struct kairos_vcpu_time_info, tsc_timestamp) == 8, "tsc_timestamp");
KAIROS_ABI_ASSERT(offsetof(struct kairos_vcpu_time_info, system_time) == 16, "system_time");
KAIROS_ABI_ASSERT(offsetof(struct kairos_vcpu_time_info, tsc_to_system_mul) == 24, "mul");
KAIROS_ABI_ASSERT(offsetof(struct kairos_vcpu_time_info, tsc_shift) == 28, "shift");
KAIROS_ABI_ASSERT(offsetof(struct kairos_vcpu_time_info, flags) == 29, "flags");
KAIROS_ABI_ASSERT(sizeof(struct kairos_shared_info) == KAIROS_PAGE_SIZE, "one page");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, abi_version) == 0x00, "abi_version");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, vcpu_count) == 0x04, "vcpu_count");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, publish_count) == 0x08, "publish_count");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, wc_version) == 0x10, "wc_version");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, wc_nsec) == 0x14, "wc_nsec");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, wc_sec) == 0x18, "wc_sec");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, upcall_pending) == 0x20, "upcall_pending");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, upcall_mask) == 0x21, "upcall_mask");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, pending_sel) == 0x28, "pending_sel");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, pending) == 0x30, "pending");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, mask) == 0x70, "mask");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, time) == 0x100, "time");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, stolen_ns) == 0x900, "stolen_ns");
KAIROS_ABI_ASSERT(offsetof(struct kairos_shared_info, reserved) == 0xb00, "reserved");

KAIROS_ABI_ASSERT(sizeof(struct kairos_timer_request) == 16, "request");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_request, op) == 0, "op");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_request, vcpu) == 2, "vcpu");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_request, timer_id) == 4, "timer_id");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_request, deadline_ns) == 8, "deadline_ns");
KAIROS_ABI_ASSERT(sizeof(struct kairos_timer_completion) == 16, "completion");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_completion, timer_id) == 0, "c.timer_id");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_completion, kind) == 4, "c.kind");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_completion, result) == 6, "c.result");
KAIROS_ABI_ASSERT(offsetof(struct kairos_timer_completion, time_ns) == 8, "c.time_ns");
KAIROS_ABI_ASSERT(sizeof(struct kairos_ring_header) == KAIROS_PAGE_SIZE, "ring header page");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, request_producer) == 0, "req prod");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, request_consumer) == 64, "req cons");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, host_polling) == 68, "polling");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, host_wants_ack) == 72, "wants ack");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, host_wants_done) == 76, "wants done");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, completion_producer) == 128, "cmp prod");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, completion_consumer) == 192, "cmp cons");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, work_done) == 196, "work done");
KAIROS_ABI_ASSERT(offsetof(struct kairos_ring_header, arrival_ns) == 200, "arrival");
KAIROS_ABI_ASSERT(KAIROS_RING_REQUESTS * sizeof(struct kairos_timer_request) == KAIROS_PAGE_SIZE,
		  "request ring is one page");
KAIROS_ABI_ASSERT(KAIROS_RING_COMPLETIONS * sizeof(struct kairos_timer_completion) ==
		  2 * KAIROS_PAGE_SIZE, "completion ring is two pages");

#endif /* KAIROS_ABI_H */
