#include <catch2/catch.hpp>

#include <elf.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vmm/guest_loader.h"
#include "vmm/layout.h"
#include "vmm/pvh.h"

using namespace kairos::vmm;
namespace layout = kairos::layout;

// The start info as Xen's public/arch-x86/hvm/start_info.h draws it: the
// kernel reads these offsets, whatever our struct says.
static_assert(offsetof(HvmStartInfo, magic) == 0);
static_assert(offsetof(HvmStartInfo, version) == 4);
static_assert(offsetof(HvmStartInfo, flags) == 8);
static_assert(offsetof(HvmStartInfo, nr_modules) == 12);
static_assert(offsetof(HvmStartInfo, modlist_paddr) == 16);
static_assert(offsetof(HvmStartInfo, cmdline_paddr) == 24);
static_assert(offsetof(HvmStartInfo, rsdp_paddr) == 32);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 40);
static_assert(offsetof(HvmStartInfo, memmap_entries) == 48);
static_assert(offsetof(HvmStartInfo, reserved) == 52);
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(offsetof(HvmModlistEntry, paddr) == 0);
static_assert(offsetof(HvmModlistEntry, size) == 8);
static_assert(offsetof(HvmModlistEntry, cmdline_paddr) == 16);
static_assert(sizeof(HvmModlistEntry) == 32);
static_assert(offsetof(HvmMemmapEntry, addr) == 0);
static_assert(offsetof(HvmMemmapEntry, size) == 8);
static_assert(offsetof(HvmMemmapEntry, type) == 16);
static_assert(sizeof(HvmMemmapEntry) == 24);
static_assert(kHvmStartMagic == 0x336ec578);
// The structures fit the page layout.h gives them, below the memory map.
static_assert(layout::kPvhStartInfoAddr + sizeof(HvmStartInfo) <= layout::kPvhModlistAddr);
static_assert(layout::kPvhModlistAddr + sizeof(HvmModlistEntry) <= layout::kPvhMemmapAddr);

namespace {

constexpr uint64_t kLoadAddress = 0x1000000;  // where Linux's vmlinux loads (CONFIG_PHYSICAL_START)
constexpr uint64_t kEntry = kLoadAddress + 0x40;
constexpr uint64_t kCodeOffset = 0x1000;
constexpr uint64_t kCodeSize = 0x100;
constexpr uint64_t kMemSize = 0x3000;  // the rest is .bss
constexpr uint64_t kNoteOffset = 0x200;

// A little vmlinux: one PT_LOAD of 256 code bytes and 8 KiB of .bss at
// 16 MiB, and a PT_NOTE with Xen's PHYS32_ENTRY (desc_size 8, as Linux
// writes it, or 4) and, first, an unrelated note to skip.
std::vector<uint8_t> fake_vmlinux(uint32_t entry_note_type = kXenElfnotePhys32Entry, uint32_t desc_size = 8)
{
	std::vector<uint8_t> image(kCodeOffset + kCodeSize, 0);
	Elf64_Ehdr header{};
	std::memcpy(header.e_ident, ELFMAG, SELFMAG);
	header.e_ident[EI_CLASS] = ELFCLASS64;
	header.e_ident[EI_DATA] = ELFDATA2LSB;
	header.e_ident[EI_VERSION] = EV_CURRENT;
	header.e_type = ET_EXEC;
	header.e_machine = EM_X86_64;
	header.e_version = EV_CURRENT;
	header.e_entry = 0xffffffff81000000;
	header.e_phoff = sizeof(Elf64_Ehdr);
	header.e_ehsize = sizeof(Elf64_Ehdr);
	header.e_phentsize = sizeof(Elf64_Phdr);
	header.e_phnum = 2;
	std::memcpy(image.data(), &header, sizeof(header));

	std::vector<uint32_t> notes = {4, 4, 1, 0x00554e47, 0x12345678};         // "GNU\0", a build id word
	notes.insert(notes.end(), {4, desc_size, entry_note_type, 0x006e6558});  // "Xen\0"
	notes.push_back(static_cast<uint32_t>(kEntry));
	if (desc_size == 8)
		notes.push_back(0);
	std::memcpy(image.data() + kNoteOffset, notes.data(), notes.size() * 4);

	Elf64_Phdr load{};
	load.p_type = PT_LOAD;
	load.p_offset = kCodeOffset;
	load.p_vaddr = 0xffffffff81000000;
	load.p_paddr = kLoadAddress;
	load.p_filesz = kCodeSize;
	load.p_memsz = kMemSize;
	Elf64_Phdr note{};
	note.p_type = PT_NOTE;
	note.p_offset = kNoteOffset;
	note.p_filesz = notes.size() * 4;
	note.p_align = 4;
	std::memcpy(image.data() + header.e_phoff, &load, sizeof(load));
	std::memcpy(image.data() + header.e_phoff + sizeof(load), &note, sizeof(note));
	for (uint64_t i = 0; i < kCodeSize; ++i)
		image[kCodeOffset + i] = static_cast<uint8_t>(0x90 + i);
	return image;
}

Elf64_Phdr &phdr(std::vector<uint8_t> &image, size_t index)
{
	return *reinterpret_cast<Elf64_Phdr *>(image.data() + sizeof(Elf64_Ehdr) + index * sizeof(Elf64_Phdr));
}

constexpr uint64_t kRamEnd = 64 << 20;

std::string parse_error(const std::vector<uint8_t> &image, uint64_t ram_end = kRamEnd)
{
	auto parsed = parse_pvh_kernel(image, ram_end);
	REQUIRE_FALSE(parsed.ok());
	return parsed.error().message;
}

}  // namespace

TEST_CASE("pvh: a vmlinux with the Xen note parses; entry, segment and end", "[pvh]")
{
	auto image = fake_vmlinux();
	CHECK(is_elf(image));
	auto parsed = parse_pvh_kernel(image, kRamEnd);
	REQUIRE(parsed.ok());
	CHECK(parsed->entry == kEntry);
	REQUIRE(parsed->segments.size() == 1);
	CHECK(parsed->segments[0].paddr == kLoadAddress);
	CHECK(parsed->segments[0].file_size == kCodeSize);
	CHECK(parsed->end == kLoadAddress + kMemSize);
	// A 32-bit .long note says the same.
	auto short_note = parse_pvh_kernel(fake_vmlinux(kXenElfnotePhys32Entry, 4), kRamEnd);
	REQUIRE(short_note.ok());
	CHECK(short_note->entry == kEntry);
}

TEST_CASE("pvh: without the entry note, the one-line error says how to build one", "[pvh]")
{
	CHECK(parse_error(fake_vmlinux(17)) ==
	      "an ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build with CONFIG_PVH=y");
	auto image = fake_vmlinux();
	phdr(image, 1).p_type = PT_NULL;  // no PT_NOTE at all
	CHECK_THAT(parse_error(image), Catch::Contains("CONFIG_PVH=y"));
}

TEST_CASE("pvh: headers and segments outside the file are refused", "[pvh]")
{
	auto image = fake_vmlinux();
	CHECK_THAT(parse_error({image.begin(), image.begin() + 40}), Catch::Contains("ELF header truncated"));
	// The second program header is cut off.
	CHECK_THAT(parse_error({image.begin(), image.begin() + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 8}),
		   Catch::Contains("program headers (2 at offset 64) run past the end of the file"));
	auto many = image;
	reinterpret_cast<Elf64_Ehdr *>(many.data())->e_phnum = 0xffff;
	CHECK_THAT(parse_error(many), Catch::Contains("run past the end"));

	auto past_end = image;
	phdr(past_end, 0).p_filesz = 0x10000;
	phdr(past_end, 0).p_memsz = 0x10000;
	CHECK_THAT(parse_error(past_end), Catch::Contains("segment 0 (offset 4096, 65536 bytes) runs past the end"));
	auto wrapping = image;
	phdr(wrapping, 0).p_offset = ~0ULL - 8;
	CHECK_THAT(parse_error(wrapping), Catch::Contains("runs past the end"));
	auto bigger_file = image;
	phdr(bigger_file, 0).p_memsz = 0x10;
	CHECK_THAT(parse_error(bigger_file), Catch::Contains("bytes in the file but 16 in memory"));
	auto note_past_end = image;
	phdr(note_past_end, 1).p_filesz = 0x100000;
	CHECK_THAT(parse_error(note_past_end), Catch::Contains("note segment 1"));
}

TEST_CASE("pvh: segments must load in guest RAM above Kairos's low memory", "[pvh]")
{
	auto image = fake_vmlinux();
	CHECK_THAT(parse_error(image, 16 << 20), Catch::Contains("does not fit in the guest's 16 MiB of RAM"));
	auto wrapping = image;
	phdr(wrapping, 0).p_paddr = ~0ULL - 0x1000;
	CHECK_THAT(parse_error(wrapping), Catch::Contains("does not fit"));
	auto low = image;
	phdr(low, 0).p_paddr = layout::kZeroPageAddr;
	CHECK_THAT(parse_error(low), Catch::Contains("below 1 MiB"));
	auto overlapping = image;
	phdr(overlapping, 1) = phdr(overlapping, 0);
	phdr(overlapping, 1).p_paddr += 0x1000;
	CHECK_THAT(parse_error(overlapping), Catch::Contains("overlap"));
}

TEST_CASE("pvh: the rest of the header is checked", "[pvh]")
{
	auto image = fake_vmlinux();
	auto elf32 = image;
	elf32[EI_CLASS] = ELFCLASS32;
	CHECK_THAT(parse_error(elf32), Catch::Contains("not a little-endian 64-bit ELF"));
	auto arm = image;
	reinterpret_cast<Elf64_Ehdr *>(arm.data())->e_machine = EM_AARCH64;
	CHECK_THAT(parse_error(arm), Catch::Contains("not an x86-64 ELF"));
	auto object = image;
	reinterpret_cast<Elf64_Ehdr *>(object.data())->e_type = ET_REL;
	CHECK_THAT(parse_error(object), Catch::Contains("not an ELF executable"));
	auto entry_outside = fake_vmlinux();
	phdr(entry_outside, 0).p_paddr = kLoadAddress + 0x100000;
	CHECK_THAT(parse_error(entry_outside), Catch::Contains("outside every loaded segment"));
	CHECK_FALSE(is_elf(std::vector<uint8_t>{0x7f, 'E', 'L'}));
}

TEST_CASE("pvh: load_pvh writes segments, .bss, cmdline, initrd and the start info", "[pvh]")
{
	auto memory = GuestMemory::create(128ULL << 20);
	REQUIRE(memory.ok());
	// Garbage where .bss goes: the loader zeroes it, not the mmap.
	REQUIRE(memory->write<uint64_t>(kLoadAddress + kMemSize - 8, ~0ULL).ok());
	auto image = fake_vmlinux();
	std::vector<uint8_t> initrd(100000, 0xab);
	auto entry = load_pvh(*memory, {image, initrd, "console=ttyS0"});
	REQUIRE(entry.ok());
	CHECK(entry->mode == EntryMode::Pvh32);
	CHECK(entry->entry_point == kEntry);
	CHECK(entry->zero_page == layout::kPvhStartInfoAddr);
	CHECK(memory->read<uint8_t>(kLoadAddress + 5).value() == 0x95);
	CHECK(memory->read<uint64_t>(kLoadAddress + kMemSize - 8).value() == 0);

	auto info = memory->read<HvmStartInfo>(layout::kPvhStartInfoAddr).value();
	CHECK(info.magic == kHvmStartMagic);
	CHECK(info.version == 1);
	CHECK(info.cmdline_paddr == layout::kCmdlineAddr);
	std::string cmdline(14, '\0');
	REQUIRE(memory->read_bytes(info.cmdline_paddr, {reinterpret_cast<uint8_t *>(cmdline.data()), 14}).ok());
	CHECK(cmdline == std::string("console=ttyS0") + '\0');
	CHECK(info.rsdp_paddr >= layout::kAcpiTablesAddr);
	CHECK(info.rsdp_paddr < layout::kMpTableAddr);

	REQUIRE(info.nr_modules == 1);
	auto module = memory->read<HvmModlistEntry>(info.modlist_paddr).value();
	CHECK(module.size == initrd.size());
	CHECK(module.paddr % 4096 == 0);
	CHECK(module.paddr >= kLoadAddress + kMemSize);
	CHECK(module.paddr + module.size <= (128ULL << 20));
	CHECK(memory->read<uint8_t>(module.paddr + module.size - 1).value() == 0xab);

	auto e820 = build_e820_map(128ULL << 20);
	REQUIRE(info.memmap_entries == e820.size());
	for (size_t i = 0; i < e820.size(); ++i) {
		auto entry_i = memory->read<HvmMemmapEntry>(info.memmap_paddr + i * sizeof(HvmMemmapEntry)).value();
		CHECK(entry_i.addr == e820[i].address);
		CHECK(entry_i.size == e820[i].size);
		CHECK(entry_i.type == e820[i].type);
	}
}

TEST_CASE("pvh: no initrd means no module; too long a cmdline or initrd is refused", "[pvh]")
{
	auto memory = GuestMemory::create(32ULL << 20);
	REQUIRE(memory.ok());
	auto image = fake_vmlinux();
	REQUIRE(load_pvh(*memory, {image, {}, ""}).ok());
	auto info = memory->read<HvmStartInfo>(layout::kPvhStartInfoAddr).value();
	CHECK(info.nr_modules == 0);
	CHECK(info.modlist_paddr == 0);

	auto long_cmdline = load_pvh(*memory, {image, {}, std::string(2048, 'x')});
	REQUIRE_FALSE(long_cmdline.ok());
	CHECK(long_cmdline.error().message == "kernel command line is 2048 bytes; this kernel accepts at most 2047");
	std::vector<uint8_t> initrd(16 << 20, 1);  // RAM above the kernel's 16 MiB: less than that
	auto big_initrd = load_pvh(*memory, {image, initrd, ""});
	REQUIRE_FALSE(big_initrd.ok());
	CHECK_THAT(big_initrd.error().message, Catch::Contains("do not fit in 32 MiB"));
}

TEST_CASE("pvh: the guest loader boots an ELF as PVH and names the file in errors", "[pvh][loader]")
{
	std::string pattern = (std::filesystem::temp_directory_path() / "kairos-pvh-XXXXXX").string();
	std::filesystem::path dir = mkdtemp(pattern.data());
	auto write = [&](const char *name, const std::vector<uint8_t> &bytes) {
		std::ofstream out(dir / name, std::ios::binary);
		out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
		return dir / name;
	};
	Config config;
	config.machine.memory_mib = 64;
	config.boot.kernel = write("vmlinux", fake_vmlinux());
	config.boot.cmdline = "console=ttyS0";
	CHECK(check_guest(config).ok());
	CHECK(kernel_format(config) == "ELF vmlinux (PVH entry)");
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());
	REQUIRE(memory->write<uint64_t>(kLoadAddress + kMemSize - 8, ~0ULL).ok());
	auto entry = load_guest(*memory, config, std::nullopt);
	REQUIRE(entry.ok());
	CHECK(entry->mode == EntryMode::Pvh32);
	CHECK(memory->read<uint32_t>(layout::kPvhStartInfoAddr).value() == kHvmStartMagic);
	// The segment, read from the file straight into guest memory, and its .bss.
	CHECK(memory->read<uint8_t>(kLoadAddress + 5).value() == 0x95);
	CHECK(memory->read<uint64_t>(kLoadAddress + kMemSize - 8).value() == 0);

	config.boot.cmdline = std::string(2048, 'x');
	auto long_cmdline = check_guest(config);
	REQUIRE_FALSE(long_cmdline.ok());
	CHECK(long_cmdline.error().message == "boot.cmdline: 2048 bytes; this kernel accepts at most 2047");

	config.boot.cmdline = "";
	config.boot.kernel = write("no-note", fake_vmlinux(17));
	auto no_note = check_guest(config);
	REQUIRE_FALSE(no_note.ok());
	CHECK(no_note.error().message == "boot.kernel " + config.boot.kernel.string() +
						 ": an ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
						 "build with CONFIG_PVH=y");
	std::filesystem::remove_all(dir);
}

TEST_CASE("pvh: a file image reads what a buffer does, and a file that shrank is an error", "[pvh][loader]")
{
	std::string pattern = (std::filesystem::temp_directory_path() / "kairos-image-XXXXXX").string();
	std::filesystem::path dir = mkdtemp(pattern.data());
	auto bytes = fake_vmlinux();
	{
		std::ofstream out(dir / "vmlinux", std::ios::binary);
		out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
	}
	auto file = FileImage::open(dir / "vmlinux", "boot.kernel");
	REQUIRE(file.ok());
	SpanImage span(bytes);
	REQUIRE(file->size() == span.size());
	std::vector<uint8_t> from_file(100), from_span(100);
	REQUIRE(file->read_at(bytes.size() - 100, from_file).ok());
	REQUIRE(span.read_at(bytes.size() - 100, from_span).ok());
	CHECK(from_file == from_span);
	CHECK_FALSE(file->read_at(bytes.size() - 99, from_file).ok());  // one byte past the end
	CHECK_FALSE(span.read_at(UINT64_MAX, from_span).ok());

	auto parsed_file = parse_pvh_kernel(*file, kRamEnd);
	auto parsed_span = parse_pvh_kernel(span, kRamEnd);
	REQUIRE(parsed_file.ok());
	REQUIRE(parsed_span.ok());
	CHECK(parsed_file->entry == parsed_span->entry);
	CHECK(parsed_file->end == parsed_span->end);

	// Truncated after it was opened: pread comes up short, and the load
	// says so instead of leaving a half-written segment unnoticed.
	std::filesystem::resize_file(dir / "vmlinux", bytes.size() / 2);
	auto memory = GuestMemory::create(64ULL << 20);
	REQUIRE(memory.ok());
	auto shrunk = load_pvh(*memory, *file, {}, "");
	REQUIRE_FALSE(shrunk.ok());
	CHECK_THAT(shrunk.error().message, Catch::Contains("shrank"));

	// Notes are read into a buffer: a PT_NOTE beyond 1 MiB is refused.
	auto big_note = fake_vmlinux();
	big_note.resize((1 << 20) + 0x1000);
	phdr(big_note, 1).p_filesz = (1 << 20) + 1;
	CHECK(parse_error(big_note) == "note segment 1 is 1048577 bytes; Kairos reads at most 1048576");

	auto missing = FileImage::open(dir / "none", "boot.kernel");
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message == "boot.kernel " + (dir / "none").string() + ": No such file or directory");
	auto directory = FileImage::open(dir, "boot.kernel");
	REQUIRE_FALSE(directory.ok());
	CHECK_THAT(directory.error().message, Catch::EndsWith("not a regular file"));
	std::filesystem::remove_all(dir);
}
