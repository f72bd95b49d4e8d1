#include <catch2/catch.hpp>

#include <cstring>

#include "devices/virtio/virtqueue.h"
#include "vmm/guest_areas.h"

using namespace kairos::vmm;
namespace devices = kairos::devices;

TEST_CASE("guest areas must be inside RAM, non-zero and not wrap", "[guest-areas]")
{
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());
	GuestAreas areas(*memory);
	std::span<uint8_t> view;
	const uint64_t last_pfn = (64ULL << 20) / 4096 - 1;

	CHECK(areas.add(GuestArea::SharedInfo, 0x100, 1, &view) == KAIROS_OK);
	CHECK(view.size() == 4096);
	CHECK(view.data() == memory->slice(0x100000, 4096)->data());
	CHECK(areas.gpa_of(GuestArea::SharedInfo) == 0x100000);

	CHECK(areas.add(GuestArea::SharedInfo, 0, 1, &view) == KAIROS_EINVAL);
	CHECK(areas.add(GuestArea::SharedInfo, last_pfn + 1, 1, &view) == KAIROS_ERANGE);
	CHECK(areas.add(GuestArea::SharedInfo, last_pfn, 1, &view) == KAIROS_OK);
	CHECK(areas.add(GuestArea::Ring, last_pfn - 1, 2, &view) == KAIROS_EBUSY);   // overlaps
	CHECK(areas.add(GuestArea::Ring, last_pfn - 2, 4, &view) == KAIROS_ERANGE);  // runs past RAM
	CHECK(areas.add(GuestArea::Ring, last_pfn - 3, 4, &view) == KAIROS_EBUSY);   // ends on it
	CHECK(areas.add(GuestArea::Ring, 0xfffffffffffffULL, 1, &view) == KAIROS_ERANGE);
	CHECK(areas.add(GuestArea::Ring, UINT64_MAX / 4096, 2, &view) == KAIROS_ERANGE);  // wrap
	CHECK(areas.add(GuestArea::Ring, 0x200, 0, &view) == KAIROS_EINVAL);
	CHECK(areas.add(GuestArea::Ring, 0x200, kMaxRingPages + 1, &view) == KAIROS_EINVAL);
	CHECK(areas.add(GuestArea::SharedInfo, 0x300, 2, &view) == KAIROS_EINVAL);  // one page only
	CHECK(areas.add(GuestArea::Ring, 0x200, 4, &view) == KAIROS_OK);
}

TEST_CASE("the MMIO gap is not RAM", "[guest-areas]")
{
	auto memory = GuestMemory::create(4096ULL << 20);
	REQUIRE(memory.ok());
	GuestAreas areas(*memory);
	std::span<uint8_t> view;
	CHECK(areas.add(GuestArea::SharedInfo, 0xc0000, 1, &view) == KAIROS_ERANGE);  // 3 GiB
	CHECK(areas.add(GuestArea::SharedInfo, 0x100000, 1, &view) == KAIROS_OK);     // 4 GiB
}

TEST_CASE("re-registration replaces, removal frees the range", "[guest-areas]")
{
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());
	GuestAreas areas(*memory);
	std::span<uint8_t> view;
	CHECK(areas.remove(GuestArea::SharedInfo) == KAIROS_ENOENT);
	CHECK(areas.add(GuestArea::SharedInfo, 0x100, 1, &view) == KAIROS_OK);
	CHECK(areas.add(GuestArea::SharedInfo, 0x101, 1, &view) == KAIROS_OK);  // module reload
	CHECK(areas.gpa_of(GuestArea::SharedInfo) == 0x101000);
	CHECK(areas.add(GuestArea::Ring, 0x100, 1, &view) == KAIROS_OK);  // old page is free again
	CHECK(areas.remove(GuestArea::SharedInfo) == KAIROS_OK);
	CHECK_FALSE(areas.registered(GuestArea::SharedInfo));
}

TEST_CASE("devices see RAM without the registered pages", "[guest-areas]")
{
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());
	GuestAreas areas(*memory);
	std::span<uint8_t> view;
	REQUIRE(areas.slice(0x100000, 4096).ok());
	CHECK(areas.ranges().size() == 1);
	CHECK(areas.ranges()[0].size == 64ULL << 20);

	REQUIRE(areas.add(GuestArea::SharedInfo, 0x100, 1, &view) == KAIROS_OK);
	REQUIRE(areas.add(GuestArea::Ring, 0x200, 2, &view) == KAIROS_OK);
	auto shared_info = areas.slice(0x100ff0, 0x20);  // straddles its last bytes
	REQUIRE_FALSE(shared_info.ok());
	CHECK(shared_info.error().message ==
	      "guest range 0x100ff0+0x20 overlaps the shared-info page the guest registered at 0x100000");
	CHECK_FALSE(areas.slice(0x0ff000, 0x1001).ok());  // its first byte
	CHECK(areas.slice(0x0ff000, 0x1000).ok());        // up to it
	CHECK(areas.slice(0x101000, 0xff000).ok());       // from its end to the ring
	auto ring = areas.slice(0x201fff, 1);
	REQUIRE_FALSE(ring.ok());
	CHECK(ring.error().message ==
	      "guest range 0x201fff+0x1 overlaps the VMRPC ring the guest registered at 0x200000");
	CHECK_FALSE(areas.slice(64ULL << 20, 1).ok());  // outside RAM, as before

	// A virtqueue's buffer there fails that chain.
	const uint64_t desc_gpa = 0x400000;
	devices::virtio::QueueConfig queue;
	queue.size = 4;
	queue.desc_gpa = desc_gpa;
	queue.avail_gpa = desc_gpa + 0x1000;
	queue.used_gpa = desc_gpa + 0x2000;
	auto ram = memory->slice(desc_gpa, 0x3000);
	REQUIRE(ram.ok());
	const uint64_t buffer = 0x100000;  // the shared-info page
	const uint32_t length = 64;
	std::memcpy(ram->data(), &buffer, 8);
	std::memcpy(ram->data() + 8, &length, 4);
	const uint16_t avail[] = {0, 1, 0};  // flags, idx, ring[0] = head 0
	std::memcpy(ram->data() + 0x1000, avail, sizeof(avail));
	auto split = devices::virtio::SplitQueue::create(areas, queue);
	REQUIRE(split.ok());
	auto chain = split->pop();
	REQUIRE_FALSE(chain.ok());
	CHECK(chain.error().message.find("overlaps the shared-info page") != std::string::npos);
	REQUIRE(areas.remove(GuestArea::SharedInfo) == KAIROS_OK);
	CHECK(areas.slice(0x100ff0, 0x20).ok());
}
