#include <catch2/catch.hpp>

#include "vmm/guest_areas.h"

using namespace kairos::vmm;

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
