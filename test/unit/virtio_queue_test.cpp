#include <catch2/catch.hpp>

#include <array>

#include "devices/virtio/chain_bytes.h"
#include "devices/virtio/virtqueue.h"
#include "test/unit/fake_guest_ram.h"

using kairos::devices::virtio::QueueConfig;
using kairos::devices::virtio::SplitQueue;
using kairos::test::DriverRings;
using kairos::test::FakeGuestRam;
using kairos::test::kDescIndirect;
using kairos::test::kDescNext;
using kairos::test::kDescWrite;

namespace {

constexpr uint64_t kRamSize = 1 << 20;
constexpr uint64_t kRings = 0x1000;
constexpr uint64_t kData = 0x10000;
constexpr uint64_t kTable = 0x8000;  // an indirect table

SplitQueue make_queue(const FakeGuestRam &ram, const QueueConfig &config)
{
	auto queue = SplitQueue::create(ram, config);
	REQUIRE(queue.ok());
	return std::move(queue).value();
}

// Makes descriptor 0, pointing at an indirect table of `length` bytes at
// kTable, the one available chain.
void make_indirect_available(DriverRings &rings, uint32_t length, uint16_t flags = 0)
{
	rings.set_descriptor(0, kTable, length, kDescIndirect | flags, 1);
	rings.make_available(0);
}

// Pops expecting an error whose message contains `words`.
void require_pop_error(SplitQueue &queue, const std::string &words)
{
	auto chain = queue.pop();
	REQUIRE_FALSE(chain.ok());
	CHECK_THAT(chain.error().message, Catch::Contains(words));
}

}  // namespace

TEST_CASE("virtio queue: create checks size, alignment and placement", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8);
	QueueConfig config = rings.config();
	CHECK(SplitQueue::create(ram, config).ok());

	for (uint16_t size : {0, 3, 6, 100}) {
		config = rings.config();
		config.size = size;
		auto queue = SplitQueue::create(ram, config);
		REQUIRE_FALSE(queue.ok());
		CHECK_THAT(queue.error().message, Catch::Contains("power of 2"));
	}
	config = rings.config();
	config.desc_gpa += 8;
	CHECK_FALSE(SplitQueue::create(ram, config).ok());
	config = rings.config();
	config.avail_gpa += 1;
	CHECK_FALSE(SplitQueue::create(ram, config).ok());
	config = rings.config();
	config.used_gpa += 2;
	CHECK_FALSE(SplitQueue::create(ram, config).ok());
	config = rings.config();
	config.used_gpa = kRamSize - 16;
	auto outside = SplitQueue::create(ram, config);
	REQUIRE_FALSE(outside.ok());
	CHECK_THAT(outside.error().message, Catch::Contains("device area"));
	config = rings.config();
	config.desc_gpa = ~uint64_t{0} & ~uint64_t{15};
	CHECK_FALSE(SplitQueue::create(ram, config).ok());
}

TEST_CASE("virtio queue: pops a chain, readable then writable, and publishes it used", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8);
	SplitQueue queue = make_queue(ram, rings.config());

	auto empty = queue.pop();
	REQUIRE(empty.ok());
	CHECK_FALSE(empty->has_value());

	rings.set_descriptor(5, kData, 16, kDescNext, 2);
	rings.set_descriptor(2, kData + 0x100, 512, kDescNext | kDescWrite, 7);
	rings.set_descriptor(7, kData + 0x400, 1, kDescWrite);
	rings.make_available(5);
	rings.set_descriptor(1, kData + 0x800, 64, 0);
	rings.make_available(1);

	auto first = queue.pop();
	REQUIRE(first.ok());
	REQUIRE(first->has_value());
	const auto &chain = **first;
	CHECK(chain.head == 5);
	REQUIRE(chain.buffers.size() == 3);
	CHECK(chain.buffers[0].gpa == kData);
	CHECK(chain.buffers[0].length == 16);
	CHECK_FALSE(chain.buffers[0].device_writable);
	CHECK(chain.buffers[1].device_writable);
	CHECK(chain.buffers[2].gpa == kData + 0x400);
	CHECK(chain.readable_bytes == 16);
	CHECK(chain.writable_bytes == 513);

	auto second = queue.pop();
	REQUIRE(second.ok());
	REQUIRE(second->has_value());
	CHECK((*second)->head == 1);
	auto none = queue.pop();
	REQUIRE(none.ok());
	CHECK_FALSE(none->has_value());

	REQUIRE(queue.push_used(5, 513).ok());
	REQUIRE(queue.push_used(1, 0).ok());
	CHECK(rings.used_idx() == 2);
	CHECK(rings.used_id(0) == 5);
	CHECK(rings.used_len(0) == 513);
	CHECK(rings.used_id(1) == 1);
	CHECK_FALSE(queue.push_used(8, 0).ok());

	// Elements added together appear together: the index moves once.
	REQUIRE(queue.add_used(2, 100).ok());
	REQUIRE(queue.add_used(7, 40).ok());
	CHECK(rings.used_idx() == 2);
	CHECK_FALSE(queue.add_used(8, 0).ok());
	queue.publish_used();
	CHECK(rings.used_idx() == 4);
	CHECK(rings.used_id(2) == 2);
	CHECK(rings.used_len(2) == 100);
	CHECK(rings.used_id(3) == 7);
	CHECK(rings.used_len(3) == 40);
}

TEST_CASE("virtio queue: refuses malformed direct chains", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8);
	SplitQueue queue = make_queue(ram, rings.config());

	SECTION("a loop through next")
	{
		rings.set_descriptor(0, kData, 16, kDescNext, 1);
		rings.set_descriptor(1, kData, 16, kDescNext, 0);
		rings.make_available(0);
		require_pop_error(queue, "longer than the queue size");
	}
	SECTION("a descriptor pointing at itself")
	{
		rings.set_descriptor(3, kData, 16, kDescNext, 3);
		rings.make_available(3);
		require_pop_error(queue, "longer than the queue size");
	}
	SECTION("next index past the queue size")
	{
		rings.set_descriptor(0, kData, 16, kDescNext, 8);
		rings.make_available(0);
		require_pop_error(queue, "next index 8");
	}
	SECTION("head past the queue size")
	{
		rings.make_available(9);
		require_pop_error(queue, "descriptor 9");
	}
	SECTION("address outside guest RAM")
	{
		rings.set_descriptor(0, kRamSize - 8, 16, 0);
		rings.make_available(0);
		require_pop_error(queue, "outside guest RAM");
	}
	SECTION("address plus length wraps around")
	{
		rings.set_descriptor(0, ~uint64_t{0} - 0xfff, 0x2000, 0);
		rings.make_available(0);
		require_pop_error(queue, "wraps around");
	}
	SECTION("zero length")
	{
		rings.set_descriptor(0, kData, 0, 0);
		rings.make_available(0);
		require_pop_error(queue, "length 0");
	}
	SECTION("writable before readable")
	{
		rings.set_descriptor(0, kData, 16, kDescNext | kDescWrite, 1);
		rings.set_descriptor(1, kData, 16, 0);
		rings.make_available(0);
		require_pop_error(queue, "follows a device-writable");
	}
	SECTION("avail index more than the queue size ahead")
	{
		rings.set_descriptor(0, kData, 16, 0);
		rings.set_avail_idx(9);
		require_pop_error(queue, "more than the queue size");
		auto notify = queue.enable_notifications();
		CHECK_FALSE(notify.ok());
	}
	SECTION("avail index behind the device's (moved back)")
	{
		rings.set_descriptor(0, kData, 16, 0);
		rings.make_available(0);
		REQUIRE(queue.pop().ok());
		rings.set_avail_idx(0);
		require_pop_error(queue, "more than the queue size");
	}
	SECTION("indirect descriptor without the feature")
	{
		rings.write_descriptor(kTable, kData, 16, 0);
		make_indirect_available(rings, 16);
		require_pop_error(queue, "without VIRTIO_F_INDIRECT_DESC");
	}
}

TEST_CASE("virtio queue: follows indirect tables and refuses malformed ones", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8, false, true);
	SplitQueue queue = make_queue(ram, rings.config());

	SECTION("a valid table, entries chained through next")
	{
		rings.write_descriptor(kTable, kData, 16, kDescNext, 2);
		rings.write_descriptor(kTable + 16, kData + 0x200, 99, 0);  // not in the chain
		rings.write_descriptor(kTable + 32, kData + 0x100, 512, kDescWrite);
		rings.set_descriptor(4, kTable, 48, kDescIndirect);
		rings.make_available(4);
		auto chain = queue.pop();
		REQUIRE(chain.ok());
		REQUIRE(chain->has_value());
		CHECK((*chain)->head == 4);
		REQUIRE((*chain)->buffers.size() == 2);
		CHECK((*chain)->buffers[1].gpa == kData + 0x100);
		CHECK((*chain)->readable_bytes == 16);
		CHECK((*chain)->writable_bytes == 512);
	}
	SECTION("direct descriptors, then an indirect table")
	{
		rings.write_descriptor(kTable, kData + 0x100, 512, kDescWrite);
		rings.set_descriptor(0, kData, 16, kDescNext, 1);
		rings.set_descriptor(1, kTable, 16, kDescIndirect);
		rings.make_available(0);
		auto chain = queue.pop();
		REQUIRE(chain.ok());
		REQUIRE(chain->has_value());
		CHECK((*chain)->buffers.size() == 2);
	}
	SECTION("a chain longer than the queue size")
	{
		for (uint16_t i = 0; i < 8; ++i)
			rings.write_descriptor(kTable + 16 * i, kData, 16, i < 7 ? kDescNext : 0, i + 1);
		rings.set_descriptor(0, kData, 16, kDescNext, 1);
		rings.set_descriptor(1, kTable, 8 * 16, kDescIndirect);
		rings.make_available(0);
		require_pop_error(queue, "longer than the queue size");
	}
	SECTION("a loop inside the table")
	{
		rings.write_descriptor(kTable, kData, 16, kDescNext, 1);
		rings.write_descriptor(kTable + 16, kData, 16, kDescNext, 0);
		make_indirect_available(rings, 32);
		require_pop_error(queue, "longer than the queue size");
	}
	SECTION("next index past the table")
	{
		rings.write_descriptor(kTable, kData, 16, kDescNext, 2);
		make_indirect_available(rings, 32);
		require_pop_error(queue, "past the table");
	}
	SECTION("length not a multiple of 16")
	{
		make_indirect_available(rings, 24);
		require_pop_error(queue, "indirect table of 24 bytes");
	}
	SECTION("length 0")
	{
		make_indirect_available(rings, 0);
		require_pop_error(queue, "indirect table of 0 bytes");
	}
	SECTION("more entries than the queue size")
	{
		make_indirect_available(rings, 9 * 16);
		require_pop_error(queue, "indirect table of 144 bytes");
	}
	SECTION("table outside guest RAM")
	{
		rings.set_descriptor(0, kRamSize - 16, 32, kDescIndirect);
		rings.make_available(0);
		require_pop_error(queue, "outside guest RAM");
	}
	SECTION("nested indirect")
	{
		rings.write_descriptor(kTable, kTable + 0x100, 16, kDescIndirect);
		make_indirect_available(rings, 16);
		require_pop_error(queue, "inside an indirect table");
	}
	SECTION("indirect with NEXT")
	{
		rings.write_descriptor(kTable, kData, 16, 0);
		rings.set_descriptor(0, kTable, 16, kDescIndirect | kDescNext, 1);
		rings.set_descriptor(1, kData, 16, 0);
		rings.make_available(0);
		require_pop_error(queue, "with the NEXT flag");
	}
	SECTION("zero-length entry in the table")
	{
		rings.write_descriptor(kTable, kData, 0, 0);
		make_indirect_available(rings, 16);
		require_pop_error(queue, "length 0");
	}
}

TEST_CASE("virtio queue: without EVENT_IDX honours VIRTQ_AVAIL_F_NO_INTERRUPT", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8);
	SplitQueue queue = make_queue(ram, rings.config());

	CHECK_FALSE(queue.needs_interrupt());  // nothing used yet
	CHECK(queue.interrupts_suppressed() == 0);
	REQUIRE(queue.push_used(0, 0).ok());
	CHECK(queue.needs_interrupt());
	CHECK_FALSE(queue.needs_interrupt());  // nothing new since
	rings.set_avail_flags(1);
	REQUIRE(queue.push_used(0, 0).ok());
	CHECK_FALSE(queue.needs_interrupt());
	CHECK(queue.interrupts_suppressed() == 1);
	rings.set_avail_flags(0);
	REQUIRE(queue.push_used(0, 0).ok());
	CHECK(queue.needs_interrupt());

	// Without EVENT_IDX there is no avail_event: enable_notifications only
	// says whether chains are waiting.
	auto waiting = queue.enable_notifications();
	REQUIRE(waiting.ok());
	CHECK_FALSE(*waiting);
	rings.set_descriptor(0, kData, 16, 0);
	rings.make_available(0);
	waiting = queue.enable_notifications();
	REQUIRE(waiting.ok());
	CHECK(*waiting);
}

TEST_CASE("virtio queue: with EVENT_IDX interrupts when used passes used_event", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8, true);
	SplitQueue queue = make_queue(ram, rings.config());
	auto push = [&queue](int count) {
		for (int i = 0; i < count; ++i)
			REQUIRE(queue.push_used(0, 0).ok());
	};

	// NO_INTERRUPT is ignored with EVENT_IDX (2.7.10): only used_event counts.
	rings.set_avail_flags(1);
	rings.set_used_event(0);
	push(1);  // used 0 -> 1 passes event 0
	CHECK(queue.needs_interrupt());
	rings.set_used_event(5);
	push(1);  // 1 -> 2
	CHECK_FALSE(queue.needs_interrupt());
	push(3);  // 2 -> 5: entry 5 not used yet
	CHECK_FALSE(queue.needs_interrupt());
	push(1);  // 5 -> 6: entry 5 used
	CHECK(queue.needs_interrupt());
	push(4);  // 6 -> 10, event 5 already behind
	CHECK_FALSE(queue.needs_interrupt());
	CHECK(queue.interrupts_suppressed() == 3);

	SECTION("16-bit wrap of the used index")
	{
		push(65534 - 10);  // used idx 65534
		CHECK(rings.used_idx() == 65534);
		rings.set_used_event(1);
		CHECK_FALSE(queue.needs_interrupt());
		push(4);  // 65534 -> 2 through 0: entry 1 used
		CHECK(rings.used_idx() == 2);
		CHECK(queue.needs_interrupt());
		rings.set_used_event(65535);
		push(1);  // 2 -> 3: event 65535 is behind
		CHECK_FALSE(queue.needs_interrupt());
		push(65533);  // 3 -> 0 through 65535
		CHECK(queue.needs_interrupt());
	}
}

TEST_CASE("virtio queue: with EVENT_IDX publishes avail_event before sleeping", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 4, true);
	SplitQueue queue = make_queue(ram, rings.config());
	rings.set_descriptor(0, kData, 16, 0);

	auto waiting = queue.enable_notifications();
	REQUIRE(waiting.ok());
	CHECK_FALSE(*waiting);
	CHECK(rings.avail_event() == 0);

	// Across the avail index's 16-bit wrap.
	for (int i = 0; i < 70000; ++i) {
		rings.make_available(0);
		waiting = queue.enable_notifications();
		REQUIRE(waiting.ok());
		REQUIRE(*waiting);
		auto chain = queue.pop();
		REQUIRE(chain.ok());
		REQUIRE(chain->has_value());
		REQUIRE(queue.push_used(0, 0).ok());
		waiting = queue.enable_notifications();
		REQUIRE(waiting.ok());
		REQUIRE_FALSE(*waiting);
		REQUIRE(rings.avail_event() == static_cast<uint16_t>(i + 1));
	}
	CHECK(rings.used_idx() == static_cast<uint16_t>(70000));
}

TEST_CASE("virtio queue: reads a descriptor once: later guest changes do not reach the chain", "[virtio]")
{
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8);
	SplitQueue queue = make_queue(ram, rings.config());
	rings.set_descriptor(0, kData, 16, 0);
	rings.make_available(0);
	auto chain = queue.pop();
	REQUIRE(chain.ok());
	REQUIRE(chain->has_value());
	rings.set_descriptor(0, kRamSize * 4, 0xffff'ffff, 0);
	CHECK((*chain)->buffers[0].gpa == kData);
	CHECK((*chain)->buffers[0].length == 16);
}

TEST_CASE("virtio chain bytes: a chain's parts read as one run, whatever the framing", "[virtio]")
{
	using kairos::devices::virtio::ChainBytes;
	FakeGuestRam ram(kRamSize);
	DriverRings rings(ram, kRings, 8);
	SplitQueue queue = make_queue(ram, rings.config());
	for (uint8_t i = 0; i < 16; ++i)
		ram.write<uint8_t>(kData + 0x100 + i, i);
	// 16 readable bytes as 3 + 13 in two places, then 2 + 6 writable.
	rings.set_descriptor(0, kData + 0x100, 3, kDescNext, 1);
	rings.set_descriptor(1, kData + 0x103, 13, kDescNext, 2);
	rings.set_descriptor(2, kData + 0x200, 2, kDescNext | kDescWrite, 3);
	rings.set_descriptor(3, kData + 0x300, 6, kDescWrite);
	rings.make_available(0);
	auto chain = queue.pop();
	REQUIRE(chain.ok());
	REQUIRE(chain->has_value());

	const ChainBytes readable(ram, **chain, ChainBytes::Part::Readable);
	const ChainBytes writable(ram, **chain, ChainBytes::Part::Writable);
	CHECK(readable.size() == 16);
	CHECK(writable.size() == 8);
	std::array<uint8_t, 4> out = {};
	REQUIRE(readable.copy_out(1, out).ok());
	CHECK(out == std::array<uint8_t, 4>{1, 2, 3, 4});
	CHECK_FALSE(readable.copy_out(14, out).ok());

	const std::array<uint8_t, 3> in = {0xa, 0xb, 0xc};
	REQUIRE(writable.copy_in(1, in).ok());
	CHECK(ram.read<uint8_t>(kData + 0x201) == 0xa);
	CHECK(ram.read<uint8_t>(kData + 0x300) == 0xb);
	CHECK(ram.read<uint8_t>(kData + 0x301) == 0xc);

	std::vector<iovec> iovecs;
	REQUIRE(writable.iovecs(1, 6, iovecs).ok());
	REQUIRE(iovecs.size() == 2);
	CHECK(iovecs[0].iov_base == ram.at(kData + 0x201));
	CHECK(iovecs[0].iov_len == 1);
	CHECK(iovecs[1].iov_base == ram.at(kData + 0x300));
	CHECK(iovecs[1].iov_len == 5);
	CHECK_FALSE(writable.iovecs(0, 9, iovecs).ok());
}
