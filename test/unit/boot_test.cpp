#include <catch2/catch.hpp>

#include <asm/bootparam.h>

#include <cstring>

#include "test/unit/fake_bzimage.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

using namespace kairos::vmm;
using kairos::test::fake_bzimage;
namespace layout = kairos::layout;

TEST_CASE("e820 map for small RAM: low RAM, holes, one high range", "[boot]")
{
	auto map = build_e820_map(256ULL << 20);
	REQUIRE(map.size() == 4);
	CHECK(map[0].address == 0);
	CHECK(map[0].size == layout::kEbdaStart);
	CHECK(map[0].type == kE820Ram);
	CHECK(map[1].type == kE820Reserved);
	CHECK(map[2].address == layout::kBiosAreaStart);
	CHECK(map[2].type == kE820Reserved);
	CHECK(map[3].address == layout::kHighMemoryStart);
	CHECK(map[3].address + map[3].size == 256ULL << 20);
	CHECK(map[3].type == kE820Ram);
}

TEST_CASE("e820 map for large RAM skips the 32-bit MMIO gap", "[boot]")
{
	auto map = build_e820_map(4096ULL << 20);
	REQUIRE(map.size() == 5);
	CHECK(map[3].address + map[3].size == layout::kMmioGapStart);
	CHECK(map[4].address == layout::kMmioGapEnd);
	uint64_t ram = 0;
	for (const auto &entry : map)
		if (entry.type == kE820Ram)
			ram += entry.size;
	// All RAM but the low holes is reported.
	CHECK(ram == (4096ULL << 20) - (layout::kHighMemoryStart - layout::kEbdaStart));
}

TEST_CASE("load_linux fills the zero page, copies kernel, initrd and cmdline", "[boot]")
{
	auto memory = GuestMemory::create(128ULL << 20);
	REQUIRE(memory.ok());
	auto image = fake_bzimage();
	std::vector<uint8_t> initrd(100000, 0xab);
	auto entry = load_linux(*memory, {image, initrd, "console=ttyS0 quiet"});
	REQUIRE(entry.ok());
	CHECK(entry->entry_point == layout::kHighMemoryStart + 0x200);
	CHECK(entry->zero_page == layout::kZeroPageAddr);

	auto params = memory->read<boot_params>(layout::kZeroPageAddr);
	REQUIRE(params.ok());
	CHECK(params->hdr.type_of_loader == 0xff);
	CHECK(params->hdr.cmd_line_ptr == layout::kCmdlineAddr);
	CHECK(params->hdr.ramdisk_size == initrd.size());
	CHECK(params->hdr.ramdisk_image % 4096 == 0);
	CHECK(params->hdr.ramdisk_image + initrd.size() <= 128ULL << 20);
	CHECK(params->e820_entries == 4);

	char cmdline[32] = {};
	REQUIRE(memory->read_bytes(layout::kCmdlineAddr, {reinterpret_cast<uint8_t *>(cmdline), 20}).ok());
	CHECK(std::string(cmdline) == "console=ttyS0 quiet");
	CHECK(memory->read<uint8_t>(params->hdr.ramdisk_image + 5).value() == 0xab);
	CHECK(memory->read<uint8_t>(layout::kHighMemoryStart + 3).value() == 21);

	// Identity map: PML4[0] -> PDPT -> PD with 2 MiB pages.
	CHECK((memory->read<uint64_t>(layout::kPml4Addr).value() & ~0xfffULL) == layout::kPdptAddr);
	CHECK(memory->read<uint64_t>(layout::kPdAddr + 8).value() == ((1ULL << 21) | 0x83));
}

TEST_CASE("load_linux refuses bad images and sizes with a reason", "[boot]")
{
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());

	std::vector<uint8_t> garbage(4096, 0x90);
	auto bad = load_linux(*memory, {garbage, {}, ""});
	REQUIRE_FALSE(bad.ok());
	CHECK(bad.error().message.find("not a bzImage") != std::string::npos);

	std::vector<uint8_t> tiny(100, 0);
	CHECK_FALSE(load_linux(*memory, {tiny, {}, ""}).ok());

	auto old = fake_bzimage();
	old[0x206] = 0x0a;  // version 2.10
	auto old_result = load_linux(*memory, {old, {}, ""});
	REQUIRE_FALSE(old_result.ok());
	CHECK(old_result.error().message.find("too old") != std::string::npos);

	auto image = fake_bzimage();
	auto long_cmdline = load_linux(*memory, {image, {}, std::string(3000, 'x')});
	REQUIRE_FALSE(long_cmdline.ok());
	CHECK(long_cmdline.error().message.find("command line") != std::string::npos);

	std::vector<uint8_t> huge_initrd(70ULL << 20, 1);
	auto no_room = load_linux(*memory, {image, huge_initrd, ""});
	REQUIRE_FALSE(no_room.ok());
	CHECK(no_room.error().message.find("do not fit") != std::string::npos);
}

TEST_CASE("guest memory accessors refuse ranges outside RAM, including wrap-around", "[memory]")
{
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());
	CHECK(memory->contains(0, 64ULL << 20));
	CHECK_FALSE(memory->contains(0, (64ULL << 20) + 1));
	CHECK_FALSE(memory->contains((64ULL << 20) - 4, 8));
	CHECK_FALSE(memory->contains(~0ULL - 2, 8));
	CHECK_FALSE(memory->contains(8, ~0ULL));
	CHECK_FALSE(memory->read<uint64_t>(~0ULL - 3).ok());
	REQUIRE(memory->write<uint32_t>(0x1000, 0xdeadbeef).ok());
	CHECK(memory->read<uint32_t>(0x1000).value() == 0xdeadbeef);
}

TEST_CASE("guest memory above 3 GiB lives above the MMIO gap", "[memory]")
{
	auto memory = GuestMemory::create(4096ULL << 20);
	REQUIRE(memory.ok());
	REQUIRE(memory->regions().size() == 2);
	CHECK(memory->regions()[1].gpa == layout::kMmioGapEnd);
	CHECK_FALSE(memory->contains(layout::kMmioGapStart, 8));
	CHECK(memory->contains(layout::kMmioGapEnd + 4096, 8));
}
