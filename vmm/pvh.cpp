#include "vmm/pvh.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "base/error.h"
#include "vmm/acpi.h"
#include "vmm/layout.h"

namespace kairos::vmm {
namespace {

static_assert(sizeof(HvmStartInfo) == 56 && offsetof(HvmStartInfo, memmap_paddr) == 40);
static_assert(sizeof(HvmModlistEntry) == 32 && sizeof(HvmMemmapEntry) == 24);

constexpr uint64_t kPageSize = 4096;
// The initrd stays below 2 GiB, where a bzImage's initrd_addr_max usually
// puts it: the kernel's early code maps that much before it moves the initrd.
constexpr uint64_t kInitrdLimit = 0x80000000;

constexpr uint64_t align_up(uint64_t value, uint64_t alignment)
{
	return (value + alignment - 1) & ~(alignment - 1);
}

template <typename T>
T read_struct(std::span<const uint8_t> image, uint64_t offset)
{
	T value;
	std::memcpy(&value, image.data() + offset, sizeof(T));
	return value;
}

// Linux's notes take a few hundred bytes; a larger PT_NOTE is not read.
constexpr uint64_t kMaxNoteBytes = 1 << 20;

Result<Elf64_Ehdr> read_elf_header(const ImageSource &image)
{
	if (image.size() < sizeof(Elf64_Ehdr))
		return make_error("ELF header truncated ({} bytes)", image.size());
	Elf64_Ehdr header;
	KAIROS_TRY(image.read_at(0, {reinterpret_cast<uint8_t *>(&header), sizeof(header)}));
	if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB)
		return make_error("not a little-endian 64-bit ELF (class {}, data {})", header.e_ident[EI_CLASS],
				  header.e_ident[EI_DATA]);
	if (header.e_machine != EM_X86_64)
		return make_error("not an x86-64 ELF (e_machine {})", header.e_machine);
	if (header.e_type != ET_EXEC)
		return make_error("not an ELF executable (e_type {})", header.e_type);
	if (header.e_phnum == 0 || header.e_phentsize != sizeof(Elf64_Phdr))
		return make_error("no usable program headers ({} of {} bytes)", header.e_phnum, header.e_phentsize);
	if (!range_inside(header.e_phoff, uint64_t{header.e_phnum} * sizeof(Elf64_Phdr), image.size()))
		return make_error("the program headers ({} at offset {}) run past the end of the file ({} bytes)",
				  header.e_phnum, header.e_phoff, image.size());
	return header;
}

// At most 65535 of 56 bytes: read_elf_header checked they are in the file.
Result<std::vector<Elf64_Phdr>> read_program_headers(const ImageSource &image, const Elf64_Ehdr &header)
{
	std::vector<Elf64_Phdr> phdrs(header.e_phnum);
	KAIROS_TRY(image.read_at(header.e_phoff,
				 {reinterpret_cast<uint8_t *>(phdrs.data()), phdrs.size() * sizeof(Elf64_Phdr)}));
	return phdrs;
}

// A PT_LOAD segment, checked against the file and the RAM Kairos leaves
// to the kernel: [1 MiB, ram_end).
Status check_segment(const Elf64_Phdr &phdr, size_t index, uint64_t file_size, uint64_t ram_end)
{
	if (phdr.p_filesz > phdr.p_memsz)
		return make_error("segment {}: {} bytes in the file but {} in memory", index, phdr.p_filesz,
				  phdr.p_memsz);
	if (!range_inside(phdr.p_offset, phdr.p_filesz, file_size))
		return make_error("segment {} (offset {}, {} bytes) runs past the end of the file ({} bytes)", index,
				  phdr.p_offset, phdr.p_filesz, file_size);
	if (phdr.p_paddr < layout::kHighMemoryStart)
		return make_error("segment {} loads at {:#x}, below 1 MiB, where Kairos keeps its boot tables", index,
				  phdr.p_paddr);
	if (!range_inside(phdr.p_paddr, phdr.p_memsz, ram_end))
		return make_error("segment {} ({:#x}, {} bytes) does not fit in the guest's {} MiB of RAM below the "
				  "PCI hole",
				  index, phdr.p_paddr, phdr.p_memsz, ram_end >> 20);
	return {};
}

Result<std::vector<ElfSegment>> load_segments(std::span<const Elf64_Phdr> phdrs, uint64_t file_size, uint64_t ram_end)
{
	std::vector<ElfSegment> segments;
	for (size_t i = 0; i < phdrs.size(); ++i) {
		const auto &phdr = phdrs[i];
		if (phdr.p_type != PT_LOAD || phdr.p_memsz == 0)
			continue;
		KAIROS_TRY(check_segment(phdr, i, file_size, ram_end));
		segments.push_back({phdr.p_offset, phdr.p_filesz, phdr.p_paddr, phdr.p_memsz});
	}
	if (segments.empty())
		return make_error("no PT_LOAD segment to load");
	std::sort(segments.begin(), segments.end(),
		  [](const ElfSegment &a, const ElfSegment &b) { return a.paddr < b.paddr; });
	for (size_t i = 1; i < segments.size(); ++i)
		if (segments[i - 1].paddr + segments[i - 1].mem_size > segments[i].paddr)
			return make_error("segments at {:#x} and {:#x} overlap", segments[i - 1].paddr,
					  segments[i].paddr);
	return segments;
}

// Walks one PT_NOTE's notes (ELF gABI "Note Section": name and descriptor
// padded to the segment's alignment, 4 unless it says 8) for Xen's
// PHYS32_ENTRY. Linux writes it as a .quad on 64-bit, others as a .long.
std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> notes, uint64_t alignment)
{
	constexpr uint64_t kNoteHeader = 12;
	uint64_t offset = 0;
	while (range_inside(offset, kNoteHeader, notes.size())) {
		auto name_size = read_struct<uint32_t>(notes, offset);
		auto desc_size = read_struct<uint32_t>(notes, offset + 4);
		auto type = read_struct<uint32_t>(notes, offset + 8);
		uint64_t name = offset + kNoteHeader;
		uint64_t desc = name + align_up(name_size, alignment);
		if (!range_inside(name, name_size, notes.size()) || !range_inside(desc, desc_size, notes.size()))
			return std::nullopt;
		if (type == kXenElfnotePhys32Entry && name_size == 4 && std::memcmp(&notes[name], "Xen", 4) == 0) {
			if (desc_size == 4)
				return read_struct<uint32_t>(notes, desc);
			if (desc_size == 8)
				return read_struct<uint64_t>(notes, desc);
		}
		offset = desc + align_up(desc_size, alignment);
	}
	return std::nullopt;
}

Result<uint32_t> read_pvh_entry(const ImageSource &image, std::span<const Elf64_Phdr> phdrs)
{
	for (size_t i = 0; i < phdrs.size(); ++i) {
		const auto &phdr = phdrs[i];
		if (phdr.p_type != PT_NOTE)
			continue;
		if (!range_inside(phdr.p_offset, phdr.p_filesz, image.size()))
			return make_error("note segment {} (offset {}, {} bytes) runs past the end of the file", i,
					  phdr.p_offset, phdr.p_filesz);
		if (phdr.p_filesz > kMaxNoteBytes)
			return make_error("note segment {} is {} bytes; Kairos reads at most {}", i, phdr.p_filesz,
					  kMaxNoteBytes);
		std::vector<uint8_t> notes(phdr.p_filesz);
		KAIROS_TRY(image.read_at(phdr.p_offset, notes));
		auto entry = find_pvh_entry(notes, phdr.p_align == 8 ? 8 : 4);
		if (!entry)
			continue;
		if (*entry > UINT32_MAX)
			return make_error("the PVH entry point {:#x} is above 4 GiB", *entry);
		return static_cast<uint32_t>(*entry);
	}
	return make_error("an ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build with CONFIG_PVH=y");
}

// Each segment's file bytes go straight into guest memory (a file image:
// one pread each, no buffer between).
Status write_segments(const GuestMemory &memory, const ImageSource &image, const PvhKernel &kernel)
{
	for (const auto &segment : kernel.segments) {
		KAIROS_TRY_ASSIGN(bytes, memory.slice(segment.paddr, segment.file_size));
		KAIROS_TRY(image.read_at(segment.file_offset, bytes));
		// The rest is .bss: zero because the ELF says so, whatever the
		// memory held before.
		KAIROS_TRY_ASSIGN(
			bss, memory.slice(segment.paddr + segment.file_size, segment.mem_size - segment.file_size));
		std::fill(bss.begin(), bss.end(), 0);
	}
	return {};
}

// The initrd, as high as it goes below kInitrdLimit and the end of low RAM,
// above the kernel: its module entry.
Result<HvmModlistEntry> write_initrd(const GuestMemory &memory, std::span<const uint8_t> initrd, uint64_t kernel_end)
{
	uint64_t highest = std::min(kInitrdLimit, memory.regions().front().end());
	uint64_t address = highest >= initrd.size() ? (highest - initrd.size()) & ~(kPageSize - 1) : 0;
	if (address < align_up(kernel_end, kPageSize))
		return make_error("the initrd ({} MiB) and kernel do not fit in {} MiB of guest RAM",
				  initrd.size() >> 20, highest >> 20);
	KAIROS_TRY(memory.write_bytes(address, initrd));
	return HvmModlistEntry{address, initrd.size(), 0, 0};
}

Status write_memory_map(const GuestMemory &memory, HvmStartInfo &info)
{
	auto e820 = build_e820_map(memory.ram_size());
	if (e820.size() * sizeof(HvmMemmapEntry) > layout::kPvhMemmapMaxSize)
		return make_error("{} memory map entries do not fit", e820.size());
	for (size_t i = 0; i < e820.size(); ++i)
		KAIROS_TRY(memory.write(layout::kPvhMemmapAddr + i * sizeof(HvmMemmapEntry),
					HvmMemmapEntry{e820[i].address, e820[i].size, e820[i].type, 0}));
	info.memmap_paddr = layout::kPvhMemmapAddr;
	info.memmap_entries = static_cast<uint32_t>(e820.size());
	return {};
}

}  // namespace

bool is_elf(std::span<const uint8_t> image)
{
	return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

Result<PvhKernel> parse_pvh_kernel(const ImageSource &image, uint64_t ram_end)
{
	KAIROS_TRY_ASSIGN(header, read_elf_header(image));
	KAIROS_TRY_ASSIGN(phdrs, read_program_headers(image, header));
	KAIROS_TRY_ASSIGN(segments, load_segments(phdrs, image.size(), ram_end));
	KAIROS_TRY_ASSIGN(entry, read_pvh_entry(image, phdrs));
	bool loaded = std::any_of(segments.begin(), segments.end(), [entry](const ElfSegment &s) {
		return entry >= s.paddr && entry - s.paddr < s.mem_size;
	});
	if (!loaded)
		return make_error("the PVH entry point {:#x} is outside every loaded segment", entry);
	uint64_t end = segments.back().paddr + segments.back().mem_size;
	return PvhKernel{std::move(segments), entry, end};
}

Result<PvhKernel> parse_pvh_kernel(std::span<const uint8_t> image, uint64_t ram_end)
{
	return parse_pvh_kernel(SpanImage(image), ram_end);
}

Result<BootEntry> load_pvh(const GuestMemory &memory, const KernelFiles &files)
{
	return load_pvh(memory, SpanImage(files.bzimage), files.initrd, files.cmdline);
}

Result<BootEntry> load_pvh(const GuestMemory &memory, const ImageSource &vmlinux, std::span<const uint8_t> initrd,
			   const std::string &cmdline)
{
	KAIROS_TRY_ASSIGN(kernel, parse_pvh_kernel(vmlinux, memory.regions().front().end()));
	KAIROS_TRY(write_segments(memory, vmlinux, kernel));

	KAIROS_TRY(write_kernel_cmdline(memory, cmdline, kPvhCmdlineLimit));

	HvmStartInfo info{};
	info.magic = kHvmStartMagic;
	info.version = kHvmStartVersion;
	info.cmdline_paddr = layout::kCmdlineAddr;
	// Linux finds the RSDP by scanning too, but only when told none.
	info.rsdp_paddr = acpi_rsdp_address(layout::kAcpiTablesAddr);
	if (!initrd.empty()) {
		KAIROS_TRY_ASSIGN(module, write_initrd(memory, initrd, kernel.end));
		KAIROS_TRY(memory.write(layout::kPvhModlistAddr, module));
		info.nr_modules = 1;
		info.modlist_paddr = layout::kPvhModlistAddr;
	}
	KAIROS_TRY(write_memory_map(memory, info));
	KAIROS_TRY(memory.write(layout::kPvhStartInfoAddr, info));
	if (auto gdt = write_boot_gdt(memory); !gdt)
		return make_error("boot GDT: {}", gdt.error().message);
	return BootEntry{kernel.entry, layout::kPvhStartInfoAddr, EntryMode::Pvh32};
}

}  // namespace kairos::vmm
