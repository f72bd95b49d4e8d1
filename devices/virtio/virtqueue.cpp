#include "devices/virtio/virtqueue.h"

#include <atomic>
#include <bit>
#include <cstring>

#include "base/error.h"

// The rings are little-endian (virtio 1.x, section 2.7 "le16"); so is every
// host Kairos runs on (x86-64), so fields are read in place without swaps.
static_assert(std::endian::native == std::endian::little);

namespace kairos::devices::virtio {

// Section 2.7.5: struct virtq_desc.
struct SplitQueue::Descriptor {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

namespace {

constexpr uint16_t kDescNext = 1;      // VIRTQ_DESC_F_NEXT
constexpr uint16_t kDescWrite = 2;     // VIRTQ_DESC_F_WRITE
constexpr uint16_t kDescIndirect = 4;  // VIRTQ_DESC_F_INDIRECT

constexpr uint16_t kAvailNoInterrupt = 1;  // VIRTQ_AVAIL_F_NO_INTERRUPT (2.7.6)

constexpr uint32_t kMaxQueueSize = 32768;

// Byte sizes of the three areas (section 2.7: flags, idx, ring[size], and
// used_event / avail_event only with EVENT_IDX).
uint64_t descriptor_table_bytes(uint16_t size)
{
	return uint64_t{16} * size;
}
uint64_t avail_ring_bytes(uint16_t size, bool event_idx)
{
	return 4 + uint64_t{2} * size + (event_idx ? 2 : 0);
}
uint64_t used_ring_bytes(uint16_t size, bool event_idx)
{
	return 4 + uint64_t{8} * size + (event_idx ? 2 : 0);
}

// Guest memory changes under us at any time: ring indices are read and
// written as atomics on the guest's bytes (alignment checked in create),
// so each is one load with the ordering the protocol needs (2.7.13).
uint16_t load_u16(std::span<uint8_t> area, uint64_t offset, std::memory_order order)
{
	return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t *>(area.data() + offset)).load(order);
}

void store_u16(std::span<uint8_t> area, uint64_t offset, uint16_t value, std::memory_order order)
{
	std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t *>(area.data() + offset)).store(value, order);
}

void store_u32(std::span<uint8_t> area, uint64_t offset, uint32_t value)
{
	std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t *>(area.data() + offset))
		.store(value, std::memory_order_relaxed);
}

// Section 2.7.10: vring_need_event, in 16-bit wrap-around arithmetic: has
// the used index passed `event` while moving from `old_idx` to `new_idx`?
bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace

SplitQueue::Descriptor SplitQueue::copy_descriptor(std::span<const uint8_t> table, uint32_t index)
{
	static_assert(sizeof(Descriptor) == 16);
	Descriptor descriptor;
	std::memcpy(&descriptor, table.data() + uint64_t{index} * sizeof(descriptor), sizeof(descriptor));
	return descriptor;
}

Result<SplitQueue> SplitQueue::create(const GuestRam &ram, const QueueConfig &config)
{
	if (config.size == 0 || config.size > kMaxQueueSize || (config.size & (config.size - 1)) != 0)
		return make_error("virtqueue size {} is not a power of 2 from 1 to 32768", config.size);
	// Section 2.7: descriptor table 16-byte, driver area 2-byte and device
	// area 4-byte aligned; the atomics below rely on it too.
	if (config.desc_gpa % 16 != 0)
		return make_error("virtqueue descriptor table at {:#x} is not 16-byte aligned", config.desc_gpa);
	if (config.avail_gpa % 2 != 0)
		return make_error("virtqueue driver area at {:#x} is not 2-byte aligned", config.avail_gpa);
	if (config.used_gpa % 4 != 0)
		return make_error("virtqueue device area at {:#x} is not 4-byte aligned", config.used_gpa);

	SplitQueue queue(ram, config);
	auto desc = ram.slice(config.desc_gpa, descriptor_table_bytes(config.size));
	if (!desc)
		return make_error("virtqueue descriptor table: {}", desc.error().message);
	auto avail = ram.slice(config.avail_gpa, avail_ring_bytes(config.size, config.event_idx));
	if (!avail)
		return make_error("virtqueue driver area: {}", avail.error().message);
	auto used = ram.slice(config.used_gpa, used_ring_bytes(config.size, config.event_idx));
	if (!used)
		return make_error("virtqueue device area: {}", used.error().message);
	// The views stay valid: guest RAM is mapped for the VM's whole life.
	queue.desc_ = *desc;
	queue.avail_ = *avail;
	queue.used_ = *used;
	return queue;
}

Result<uint16_t> SplitQueue::pending() const
{
	// Acquire: the ring entries and descriptors the driver wrote before
	// bumping idx are visible once we see the new idx (2.7.13.3).
	const uint16_t avail_idx = load_u16(avail_, kIdxOffset, std::memory_order_acquire);
	const uint16_t count = static_cast<uint16_t>(avail_idx - next_avail_);
	if (count > config_.size)
		return make_error(
			"virtqueue avail index {} is {} entries ahead of the device, more than the queue size {}",
			avail_idx, count, config_.size);
	return count;
}

Status SplitQueue::add_buffer(Chain &chain, const Descriptor &descriptor) const
{
	if (descriptor.len == 0)
		return make_error("virtqueue chain {}: descriptor of length 0", chain.head);
	if (descriptor.addr + descriptor.len < descriptor.addr)
		return make_error("virtqueue chain {}: buffer {:#x}+{:#x} wraps around", chain.head, descriptor.addr,
				  descriptor.len);
	auto view = ram_->slice(descriptor.addr, descriptor.len);
	if (!view)
		return make_error("virtqueue chain {}: {}", chain.head, view.error().message);
	const bool writable = (descriptor.flags & kDescWrite) != 0;
	// Section 2.7.4.2: readable buffers first, then writable ones.
	if (!writable && chain.writable_bytes > 0)
		return make_error("virtqueue chain {}: a device-readable buffer follows a device-writable one",
				  chain.head);
	if (chain.buffers.size() >= config_.size)
		return make_error("virtqueue chain {} is longer than the queue size {} (a loop?)", chain.head,
				  config_.size);
	chain.buffers.push_back({descriptor.addr, descriptor.len, writable});
	(writable ? chain.writable_bytes : chain.readable_bytes) += descriptor.len;
	return {};
}

Status SplitQueue::walk_indirect(Chain &chain, const Descriptor &indirect) const
{
	// Section 2.7.5.3: only when negotiated, never with NEXT, a whole
	// number of descriptors, and no more than the queue holds.
	if (!config_.indirect_desc)
		return make_error("virtqueue chain {}: indirect descriptor without VIRTIO_F_INDIRECT_DESC", chain.head);
	if (indirect.flags & kDescNext)
		return make_error("virtqueue chain {}: indirect descriptor with the NEXT flag", chain.head);
	if (indirect.len == 0 || indirect.len % sizeof(Descriptor) != 0 ||
	    indirect.len > uint64_t{config_.size} * sizeof(Descriptor))
		return make_error("virtqueue chain {}: indirect table of {} bytes is not 1 to {} descriptors",
				  chain.head, indirect.len, config_.size);
	auto table = ram_->slice(indirect.addr, indirect.len);
	if (!table)
		return make_error("virtqueue chain {}: indirect table: {}", chain.head, table.error().message);
	const uint32_t count = indirect.len / sizeof(Descriptor);
	uint32_t index = 0;
	for (;;) {
		const Descriptor descriptor = copy_descriptor(*table, index);
		if (descriptor.flags & kDescIndirect)
			return make_error("virtqueue chain {}: indirect descriptor inside an indirect table",
					  chain.head);
		KAIROS_TRY(add_buffer(chain, descriptor));
		if (!(descriptor.flags & kDescNext))
			return {};
		if (descriptor.next >= count)
			return make_error("virtqueue chain {}: indirect next index {} is past the table's {} entries",
					  chain.head, descriptor.next, count);
		index = descriptor.next;
	}
}

Result<std::optional<Chain>> SplitQueue::pop()
{
	KAIROS_TRY_ASSIGN(count, pending());
	if (count == 0)
		return std::optional<Chain>();

	Chain chain;
	chain.head = load_u16(avail_, kRingOffset + 2 * static_cast<uint64_t>(next_avail_ % config_.size),
			      std::memory_order_relaxed);
	if (chain.head >= config_.size)
		return make_error("virtqueue avail entry {} names descriptor {}, past the queue size {}", next_avail_,
				  chain.head, config_.size);
	uint16_t index = chain.head;
	// Each descriptor is copied once and only the copy is used. The length
	// bound in add_buffer ends any loop after `size` buffers.
	for (;;) {
		const Descriptor descriptor = copy_descriptor(desc_, index);
		if (descriptor.flags & kDescIndirect) {
			KAIROS_TRY(walk_indirect(chain, descriptor));
			break;
		}
		KAIROS_TRY(add_buffer(chain, descriptor));
		if (!(descriptor.flags & kDescNext))
			break;
		if (descriptor.next >= config_.size)
			return make_error("virtqueue chain {}: next index {} is past the queue size {}", chain.head,
					  descriptor.next, config_.size);
		index = descriptor.next;
	}
	++next_avail_;
	return std::optional<Chain>(std::move(chain));
}

Status SplitQueue::push_used(uint16_t head, uint32_t written)
{
	KAIROS_TRY(add_used(head, written));
	publish_used();
	return {};
}

Status SplitQueue::add_used(uint16_t head, uint32_t written)
{
	if (head >= config_.size)
		return make_error("virtqueue used head {} is past the queue size {}", head, config_.size);
	// Section 2.7.8: struct virtq_used_elem { le32 id; le32 len; }.
	const uint64_t element = kRingOffset + 8 * static_cast<uint64_t>(next_used_ % config_.size);
	store_u32(used_, element, head);
	store_u32(used_, element + 4, written);
	++next_used_;
	return {};
}

void SplitQueue::publish_used()
{
	// Release: the elements (and the data written into the buffers) are
	// visible before the driver sees the new idx (2.7.13.3).
	store_u16(used_, kIdxOffset, next_used_, std::memory_order_release);
}

bool SplitQueue::needs_interrupt()
{
	const uint16_t old_used = last_signalled_;
	last_signalled_ = next_used_;
	if (old_used == next_used_)
		return false;  // nothing published since the last question
	// The used idx store must be ordered before the flag / used_event load,
	// else a driver re-enabling interrupts right then is missed (2.7.10).
	std::atomic_thread_fence(std::memory_order_seq_cst);
	bool wanted;
	if (config_.event_idx) {
		const uint16_t used_event =
			load_u16(avail_, kRingOffset + 2 * uint64_t{config_.size}, std::memory_order_relaxed);
		wanted = need_event(used_event, next_used_, old_used);
	} else {
		wanted = !(load_u16(avail_, kFlagsOffset, std::memory_order_relaxed) & kAvailNoInterrupt);
	}
	if (!wanted)
		++suppressed_;
	return wanted;
}

Result<bool> SplitQueue::enable_notifications()
{
	if (config_.event_idx) {
		// avail_event: kick us when the driver adds the entry at
		// next_avail_ (2.7.10), i.e. the next one we have not seen.
		store_u16(used_, kRingOffset + 8 * uint64_t{config_.size}, next_avail_, std::memory_order_relaxed);
		// The store must be visible before we re-read avail idx: else the
		// driver may add a chain, see the old avail_event, not kick, and
		// we sleep with work pending.
		std::atomic_thread_fence(std::memory_order_seq_cst);
	}
	KAIROS_TRY_ASSIGN(count, pending());
	return count != 0;
}

}  // namespace kairos::devices::virtio
