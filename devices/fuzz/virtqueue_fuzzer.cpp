// libFuzzer target: a hostile guest driving one split virtqueue
// (devices/virtio/virtqueue). The input is a small program: the queue's
// configuration, then operations of a guest writing descriptors, avail
// entries, indices and flags (anywhere, at any time: also between the
// device's pops) interleaved with what a device does (pop, push_used,
// needs_interrupt, enable_notifications). Random bytes thus reach deep
// ring states, not only rejected headers. Besides what the sanitizers
// catch, it checks what SplitQueue promises a device:
//   - a chain has 1 to `size` buffers, none empty, each inside guest RAM
//     without wrapping, readable ones before writable ones, and byte
//     counts that add up;
//   - the head of a popped chain can be pushed used;
//   - every call returns, and a final drain pops at most `size` chains
//     (the avail index may not run further ahead);
//   - after an error, a queue created again on the same rings (a driver's
//     reset) works.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "devices/virtio/virtqueue.h"
#include "test/fuzz/fuzz_check.h"
#include "test/unit/fake_guest_ram.h"

using kairos::devices::virtio::Chain;
using kairos::devices::virtio::QueueConfig;
using kairos::devices::virtio::SplitQueue;
using kairos::test::FakeGuestRam;

namespace {

constexpr uint64_t kRamSize = 0x10000;
// Fixed ring places, large enough for a queue of 512.
constexpr uint64_t kDescGpa = 0x1000;
constexpr uint64_t kAvailGpa = 0x3000;
constexpr uint64_t kUsedGpa = 0x4000;
constexpr uint64_t kDataGpa = 0x6000;  // buffers and indirect tables

// Reads the input front to back; past its end, zeros.
class Input {
public:
	Input(const uint8_t *data, size_t size) : data_(data), size_(size) {}
	bool done() const { return at_ >= size_; }
	uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
	uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
	uint32_t u32() { return u16() | static_cast<uint32_t>(u16()) << 16; }

private:
	const uint8_t *data_;
	size_t size_;
	size_t at_ = 0;
};

// A guest address: mostly in the data area, sometimes anywhere in RAM,
// now and then outside it or near the top of the address space.
uint64_t pick_address(Input &input)
{
	const uint8_t kind = input.u8();
	const uint16_t value = input.u16();
	switch (kind % 8) {
	case 0:
		return value;
	case 1:
		return kRamSize - (value % 64);
	case 2:
		return ~uint64_t{0} - value;
	default:
		return kDataGpa + value % (kRamSize - kDataGpa);
	}
}

void check_chain(const Chain &chain, const QueueConfig &config)
{
	FUZZ_CHECK(chain.head < config.size);
	FUZZ_CHECK(!chain.buffers.empty());
	FUZZ_CHECK(chain.buffers.size() <= config.size);
	uint64_t readable = 0;
	uint64_t writable = 0;
	for (const auto &buffer : chain.buffers) {
		FUZZ_CHECK(buffer.length > 0);
		FUZZ_CHECK(buffer.gpa < kRamSize && buffer.length <= kRamSize - buffer.gpa);
		if (buffer.device_writable)
			writable += buffer.length;
		else
			readable += buffer.length;
		FUZZ_CHECK(buffer.device_writable || writable == 0);
	}
	FUZZ_CHECK(readable == chain.readable_bytes);
	FUZZ_CHECK(writable == chain.writable_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Input input(data, size);
	FakeGuestRam ram(kRamSize);

	QueueConfig config;
	const uint8_t shape = input.u8();
	// Mostly a small power of 2 (chains fill it); sometimes up to 512,
	// sometimes any 16-bit size.
	config.size = (shape & 0x80)   ? input.u16()
		      : (shape & 0x40) ? static_cast<uint16_t>(1u << (shape % 10))
				       : static_cast<uint16_t>(1u << (shape % 5));
	const uint8_t flags = input.u8();
	config.event_idx = flags & 1;
	config.indirect_desc = flags & 2;
	config.desc_gpa = kDescGpa + ((flags & 4) ? 8 : 0);
	config.avail_gpa = kAvailGpa + ((flags & 8) ? 1 : 0);
	config.used_gpa = kUsedGpa + ((flags & 16) ? 2 : 0);
	auto created = SplitQueue::create(ram, config);
	if (!created.ok())
		return 0;
	SplitQueue queue = std::move(created).value();
	kairos::test::DriverRings rings(ram, kDescGpa, 1, config.event_idx, config.indirect_desc);

	std::vector<uint16_t> popped;  // heads the device holds
	bool failed = false;
	unsigned resets = 0;
	uint16_t avail_idx = 0;
	// After an error a device stops; the driver resets it and starts
	// again on fresh rings.
	auto reset = [&] {
		std::fill(ram.at(kAvailGpa), ram.at(kDataGpa), 0);
		auto fresh = SplitQueue::create(ram, config);
		FUZZ_CHECK(fresh.ok());
		queue = std::move(fresh).value();
		popped.clear();
		avail_idx = 0;
		++resets;
	};
	auto pop = [&] {
		auto chain = queue.pop();
		if (!chain.ok()) {
			failed = true;
			return false;
		}
		if (!chain->has_value())
			return false;
		check_chain(**chain, config);
		popped.push_back((*chain)->head);
		return true;
	};

	// Mostly the guest builds chains in order (descriptor i, next i + 1)
	// and makes available the head it started from, so that random bytes
	// give well-formed chains as often as broken ones.
	uint16_t last_index = 0;
	uint16_t chain_head = 0;
	while (!input.done()) {
		const uint8_t operation = input.u8();
		switch (operation % 16) {
		case 0:
		case 1:
		case 2:
		case 3: {  // the guest writes a descriptor
			const uint8_t how = input.u8();
			const uint16_t index = (how & 1) ? static_cast<uint16_t>((last_index + 1) % config.size)
							 : static_cast<uint16_t>(input.u16() % config.size);
			if (how & 2)
				chain_head = index;
			const uint64_t address = pick_address(input);
			const uint32_t length = (how & 4) ? input.u32() : input.u8();
			// NEXT and WRITE from two bits, INDIRECT one time in 8.
			const uint16_t descriptor_flags =
				(how >> 3 & 3) | ((how >> 5) == 7 ? kairos::test::kDescIndirect : 0);
			const uint16_t next = (how & 0x80) ? input.u8() : static_cast<uint16_t>(index + 1);
			rings.write_descriptor(config.desc_gpa + 16 * uint64_t{index}, address, length,
					       descriptor_flags, next);
			last_index = index;
			break;
		}
		case 4: {  // an indirect table entry in the data area
			const uint64_t at = kDataGpa + 16 * static_cast<uint64_t>(input.u8() % 16);
			const uint64_t address = pick_address(input);
			const uint32_t length = input.u8();
			const uint16_t descriptor_flags = input.u8() % 8;
			rings.write_descriptor(at, address, length, descriptor_flags, input.u8() % 16);
			break;
		}
		case 5:
		case 6: {  // the guest makes a chain available
			const uint8_t how = input.u8();
			const uint16_t head = (how & 3) ? chain_head : input.u16();
			ram.write<uint16_t>(config.avail_gpa + 4 + 2 * static_cast<uint64_t>(avail_idx % config.size),
					    head);
			++avail_idx;
			ram.write<uint16_t>(config.avail_gpa + 2, avail_idx);
			break;
		}
		case 7:  // the guest writes any avail idx
			avail_idx = input.u16();
			ram.write<uint16_t>(config.avail_gpa + 2, avail_idx);
			break;
		case 8:  // flags, or used_event
			if (input.u8() & 1)
				ram.write<uint16_t>(config.avail_gpa, input.u16());
			else
				ram.write<uint16_t>(config.avail_gpa + 4 + 2 * uint64_t{config.size}, input.u16());
			break;
		case 9:
		case 10:
		case 11:
			if (!pop() && failed && resets < 8) {
				reset();
				failed = false;
			}
			break;
		case 12:
			if (!popped.empty()) {
				FUZZ_CHECK(queue.push_used(popped.back(), input.u32()).ok());
				popped.pop_back();
			}
			break;
		case 13:
			queue.needs_interrupt();
			break;
		case 14:
			if (!queue.enable_notifications().ok() && resets < 8)
				reset();
			break;
		case 15:  // any byte of RAM changes
			ram.write<uint8_t>(input.u16() % kRamSize, input.u8());
			break;
		}
	}
	// A device drains what is left while the queue is healthy (a
	// malformed ring stops it): never more chains than the queue holds.
	uint32_t drained = 0;
	while (!failed && pop()) {
		++drained;
		FUZZ_CHECK(drained <= config.size);
	}
	for (uint16_t head : popped)
		FUZZ_CHECK(queue.push_used(head, 0).ok());
	return 0;
}
