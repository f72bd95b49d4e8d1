// FakeGuestRam: guest RAM on a plain buffer, for tests of code that reaches
// guest memory through GuestRam (virtqueues, virtio devices); and
// DriverRings, the driver's side of one split virtqueue (virtio 1.2 section
// 2.7) laid out in it, so tests post chains as a guest driver would.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/guest_ram.h"
#include "devices/virtio/virtqueue.h"

namespace kairos::test {

class FakeGuestRam : public GuestRam {
public:
	// `size` bytes of zeroed RAM at guest-physical `base`.
	explicit FakeGuestRam(uint64_t size, uint64_t base = 0) : base_(base), bytes_(size) {}

	Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t length) const override
	{
		if (gpa < base_ || gpa - base_ > bytes_.size() || length > bytes_.size() - (gpa - base_))
			return make_error("guest range {:#x}+{:#x} is outside guest RAM", gpa, length);
		return std::span<uint8_t>(bytes_.data() + (gpa - base_), length);
	}
	std::vector<Range> ranges() const override { return {{base_, bytes_.size()}}; }

	template <typename T>
	void write(uint64_t gpa, const T &value)
	{
		std::memcpy(bytes_.data() + (gpa - base_), &value, sizeof(T));
	}

	template <typename T>
	T read(uint64_t gpa) const
	{
		T value;
		std::memcpy(&value, bytes_.data() + (gpa - base_), sizeof(T));
		return value;
	}

	uint8_t *at(uint64_t gpa) { return bytes_.data() + (gpa - base_); }
	uint64_t base() const { return base_; }
	uint64_t size() const { return bytes_.size(); }

private:
	uint64_t base_;
	mutable std::vector<uint8_t> bytes_;
};

// Descriptor flags (section 2.7.5).
inline constexpr uint16_t kDescNext = 1;
inline constexpr uint16_t kDescWrite = 2;
inline constexpr uint16_t kDescIndirect = 4;

// The driver's view of one split virtqueue in a FakeGuestRam: descriptor
// table, avail and used rings at fixed addresses from `gpa` (4 KiB apart
// for sizes up to 256).
class DriverRings {
public:
	DriverRings(FakeGuestRam &ram, uint64_t gpa, uint16_t size, bool event_idx = false, bool indirect_desc = false)
		: ram_(ram)
	{
		config_.size = size;
		config_.desc_gpa = gpa;
		config_.avail_gpa = gpa + uint64_t{16} * size;
		config_.used_gpa = (config_.avail_gpa + 6 + uint64_t{2} * size + 3) & ~uint64_t{3};
		config_.event_idx = event_idx;
		config_.indirect_desc = indirect_desc;
	}

	const devices::virtio::QueueConfig &config() const { return config_; }

	void set_descriptor(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0)
	{
		write_descriptor(config_.desc_gpa + uint64_t{16} * index, addr, len, flags, next);
	}
	void write_descriptor(uint64_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0)
	{
		ram_.write<uint64_t>(at, addr);
		ram_.write<uint32_t>(at + 8, len);
		ram_.write<uint16_t>(at + 12, flags);
		ram_.write<uint16_t>(at + 14, next);
	}

	// Makes the chain starting at descriptor `head` available.
	void make_available(uint16_t head)
	{
		const uint16_t idx = avail_idx();
		ram_.write<uint16_t>(config_.avail_gpa + 4 + 2 * static_cast<uint64_t>(idx % config_.size), head);
		set_avail_idx(static_cast<uint16_t>(idx + 1));
	}

	uint16_t avail_idx() const { return ram_.read<uint16_t>(config_.avail_gpa + 2); }
	void set_avail_idx(uint16_t idx)
	{
		__atomic_store_n(reinterpret_cast<uint16_t *>(ram_.at(config_.avail_gpa + 2)), idx, __ATOMIC_RELEASE);
	}
	void set_avail_flags(uint16_t flags) { ram_.write<uint16_t>(config_.avail_gpa, flags); }
	void set_used_event(uint16_t event)
	{
		ram_.write<uint16_t>(config_.avail_gpa + 4 + 2 * uint64_t{config_.size}, event);
	}

	uint16_t used_idx() const
	{
		return __atomic_load_n(reinterpret_cast<const uint16_t *>(ram_.at(config_.used_gpa + 2)),
				       __ATOMIC_ACQUIRE);
	}
	uint32_t used_id(uint16_t position) const
	{
		return ram_.read<uint32_t>(config_.used_gpa + 4 + 8 * static_cast<uint64_t>(position % config_.size));
	}
	uint32_t used_len(uint16_t position) const
	{
		return ram_.read<uint32_t>(config_.used_gpa + 8 + 8 * static_cast<uint64_t>(position % config_.size));
	}
	uint16_t avail_event() const { return ram_.read<uint16_t>(config_.used_gpa + 4 + 8 * uint64_t{config_.size}); }

private:
	FakeGuestRam &ram_;
	devices::virtio::QueueConfig config_;
};

}  // namespace kairos::test
