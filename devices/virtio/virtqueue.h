// SplitQueue: the device's side of one split virtqueue (virtio 1.2 section
// 2.7), reading descriptors the guest wrote and publishing used entries.
//
// Everything in the rings is untrusted: every index, address, length and
// flag is checked here before a device sees it. A malformed chain is an
// error (the transport then sets DEVICE_NEEDS_RESET, section 2.1.2); the
// queue never loops, never allocates more than its size in buffers per
// chain, and never touches memory outside GuestRam.
//
// Threading: one SplitQueue is used by one thread (the device's).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/guest_ram.h"
#include "base/result.h"

namespace kairos::devices::virtio {

// Feature bits (virtio 1.2 section 6).
inline constexpr uint64_t kFeatureIndirectDesc = 1ULL << 28;  // VIRTIO_F_INDIRECT_DESC
inline constexpr uint64_t kFeatureEventIdx = 1ULL << 29;      // VIRTIO_F_EVENT_IDX
inline constexpr uint64_t kFeatureVersion1 = 1ULL << 32;      // VIRTIO_F_VERSION_1

// Where the driver put the queue and what it negotiated; the transport
// fills it from the QueueNum/QueueDesc/QueueDriver/QueueDevice registers.
struct QueueConfig {
	uint16_t size = 0;           // a power of 2, 1..32768 (section 2.7)
	uint64_t desc_gpa = 0;       // descriptor table, 16-byte aligned
	uint64_t avail_gpa = 0;      // driver area, 2-byte aligned
	uint64_t used_gpa = 0;       // device area, 4-byte aligned
	bool event_idx = false;      // VIRTIO_F_EVENT_IDX negotiated
	bool indirect_desc = false;  // VIRTIO_F_INDIRECT_DESC negotiated
};

// One buffer of a chain, as the device may use it.
struct Buffer {
	uint64_t gpa = 0;
	uint32_t length = 0;  // bytes, > 0
	bool device_writable = false;
};

// One chain the driver made available: device-readable buffers first, then
// device-writable ones (section 2.7.4.2 requires that order; a chain that
// breaks it is an error).
struct Chain {
	uint16_t head = 0;  // the index returned in the used ring
	std::vector<Buffer> buffers;
	uint64_t readable_bytes = 0;
	uint64_t writable_bytes = 0;
};

class SplitQueue {
public:
	// Checks size and alignment and that the three areas are in guest RAM.
	static Result<SplitQueue> create(const GuestRam &ram, const QueueConfig &config);

	// The next chain the driver made available, or nullopt when there is
	// none. An error (loop, chain longer than the queue, address outside
	// RAM, zero length, bad indirect table, avail index that moved more
	// than the queue size) means the device must stop using this queue.
	Result<std::optional<Chain>> pop();

	// Puts `head` in the used ring with `written` bytes (section 2.7.8)
	// and publishes the new used index.
	Status push_used(uint16_t head, uint32_t written);
	// As push_used, without publishing: elements that belong together
	// (one received frame over several MRG_RXBUF buffers, section 5.1.6.4)
	// become visible at once with publish_used(). A driver that sees the
	// first may read the rest at once: Linux's virtio_net drops the frame
	// ("rx error: N buffers out of M missing") when one is not there yet.
	Status add_used(uint16_t head, uint32_t written);
	void publish_used();

	// After a batch of push_used: does the driver want an interrupt?
	// VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX (2.7.10).
	// False when nothing was pushed since the last call; a false answer
	// after a push counts as one interrupt suppressed.
	bool needs_interrupt();

	// Before the device waits for a notification: publish avail_event
	// (EVENT_IDX) so the driver kicks at the next chain. Returns true when
	// chains arrived meanwhile (pop again before sleeping).
	Result<bool> enable_notifications();

	uint64_t interrupts_suppressed() const { return suppressed_; }
	const QueueConfig &config() const { return config_; }

private:
	struct Descriptor;  // section 2.7.5, struct virtq_desc

	// Field offsets in both rings: flags, idx, then ring[] (2.7.6, 2.7.8).
	static constexpr uint64_t kFlagsOffset = 0;
	static constexpr uint64_t kIdxOffset = 2;
	static constexpr uint64_t kRingOffset = 4;

	SplitQueue(const GuestRam &ram, const QueueConfig &config) : ram_(&ram), config_(config) {}

	// Chains available and not yet popped; an error when avail idx moved
	// more than the queue size ahead.
	Result<uint16_t> pending() const;
	static Descriptor copy_descriptor(std::span<const uint8_t> table, uint32_t index);
	Status add_buffer(Chain &chain, const Descriptor &descriptor) const;
	Status walk_indirect(Chain &chain, const Descriptor &indirect) const;

	const GuestRam *ram_;
	QueueConfig config_;
	// The three areas, checked in guest RAM by create().
	std::span<uint8_t> desc_;
	std::span<uint8_t> avail_;
	std::span<uint8_t> used_;
	uint16_t next_avail_ = 0;      // the driver's avail entries consumed so far
	uint16_t next_used_ = 0;       // our used index
	uint16_t last_signalled_ = 0;  // used index at the last needs_interrupt()
	uint64_t suppressed_ = 0;
};

}  // namespace kairos::devices::virtio
