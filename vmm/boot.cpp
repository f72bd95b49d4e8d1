#include "vmm/boot.h"

#include <asm/bootparam.h>

#include <algorithm>
#include <cstring>

#include "vmm/layout.h"

namespace kairos::vmm {
namespace {

constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
// 2.12 added xloadflags, which says whether the 64-bit entry exists.
constexpr uint16_t kMinimumProtocol = 0x020c;
constexpr uint64_t kSetupHeaderOffset = 0x1f1;
constexpr uint64_t kSetupJumpOffset = 0x201;
constexpr uint64_t k64BitEntryOffset = 0x200;  // boot.rst "64-bit BOOT PROTOCOL"
constexpr uint8_t kLoaderTypeUndefined = 0xff;
constexpr uint64_t kPageSize = 4096;

constexpr uint64_t align_down(uint64_t value, uint64_t alignment)
{
	return value & ~(alignment - 1);
}
constexpr uint64_t align_up(uint64_t value, uint64_t alignment)
{
	return align_down(value + alignment - 1, alignment);
}

// Copies the image's setup header into a zero page. The header runs from
// 0x1f1 to the end of the setup jump, whose length byte is at 0x201.
Result<boot_params> read_setup_header(std::span<const uint8_t> image)
{
	if (image.size() < 1024)
		return make_error("not a bzImage: {} bytes is too small", image.size());
	boot_params params{};
	uint64_t header_end = kSetupJumpOffset + 1 + image[kSetupJumpOffset];
	header_end = std::min<uint64_t>(header_end, offsetof(boot_params, hdr) + sizeof(setup_header));
	std::memcpy(reinterpret_cast<uint8_t *>(&params) + kSetupHeaderOffset, image.data() + kSetupHeaderOffset,
		    header_end - kSetupHeaderOffset);
	const setup_header &hdr = params.hdr;
	if (hdr.boot_flag != kBootFlag || hdr.header != kHeaderMagic)
		return make_error("not a bzImage: no \"HdrS\" setup header");
	if (hdr.version < kMinimumProtocol)
		return make_error("boot protocol {}.{:02} is too old (need 2.12 or newer)", hdr.version >> 8,
				  hdr.version & 0xff);
	if (!(hdr.xloadflags & XLF_KERNEL_64))
		return make_error("the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)");
	if (!(hdr.loadflags & LOADED_HIGH))
		return make_error("zImage kernels (not loaded high) are not supported");
	return params;
}

// The writes land in low RAM, which every guest has; if one still fails
// (a layout.h address outside the memory map), the vCPU would start on
// garbage tables and triple-fault with no clue, so the error is returned.
Status write_identity_page_tables(const GuestMemory &memory)
{
	// PML4[0] -> PDPT, PDPT[0] -> PD, PD maps 1 GiB in 2 MiB pages.
	constexpr uint64_t kPresentWritable = 0x3;
	constexpr uint64_t kLargePage = 0x80;
	KAIROS_TRY(memory.write<uint64_t>(layout::kPml4Addr, layout::kPdptAddr | kPresentWritable));
	KAIROS_TRY(memory.write<uint64_t>(layout::kPdptAddr, layout::kPdAddr | kPresentWritable));
	for (uint64_t i = 0; i < 512; ++i)
		KAIROS_TRY(memory.write<uint64_t>(layout::kPdAddr + i * 8, (i << 21) | kPresentWritable | kLargePage));
	return {};
}

}  // namespace

Status write_boot_gdt(const GuestMemory &memory)
{
	auto entries = boot_gdt_entries();
	for (size_t i = 0; i < entries.size(); ++i)
		KAIROS_TRY(memory.write<uint64_t>(layout::kGdtAddr + i * 8, entries[i]));
	return memory.write<uint64_t>(layout::kIdtAddr, 0);
}

std::vector<uint64_t> boot_gdt_entries()
{
	return {
		0,                      // null
		0x00cf9b000000ffffULL,  // 0x08: flat 32-bit code, DPL 0 (PVH entry)
		0x00af9b000000ffffULL,  // 0x10: 64-bit code, DPL 0
		0x00cf93000000ffffULL,  // 0x18: flat data, DPL 0
		0x0080890000000067ULL,  // 0x20: 64-bit TSS (VMX wants a valid TR)
	};
}

std::vector<E820Entry> build_e820_map(uint64_t ram_size)
{
	std::vector<E820Entry> map;
	map.push_back({0, layout::kEbdaStart, kE820Ram});
	map.push_back({layout::kEbdaStart, layout::kLowMemoryEnd - layout::kEbdaStart, kE820Reserved});
	map.push_back({layout::kBiosAreaStart, layout::kBiosAreaEnd - layout::kBiosAreaStart, kE820Reserved});
	uint64_t below_gap = std::min(ram_size, layout::kMmioGapStart);
	if (below_gap > layout::kHighMemoryStart)
		map.push_back({layout::kHighMemoryStart, below_gap - layout::kHighMemoryStart, kE820Ram});
	if (ram_size > below_gap)
		map.push_back({layout::kMmioGapEnd, ram_size - below_gap, kE820Ram});
	return map;
}

Result<uint64_t> kernel_cmdline_limit(std::span<const uint8_t> bzimage)
{
	KAIROS_TRY_ASSIGN(params, read_setup_header(bzimage));
	return std::min<uint64_t>(params.hdr.cmdline_size, layout::kCmdlineMaxSize - 1);
}

Status write_kernel_cmdline(const GuestMemory &memory, const std::string &cmdline, uint64_t limit_bytes)
{
	if (cmdline.size() > limit_bytes)
		return make_error("kernel command line is {} bytes; this kernel accepts at most {}", cmdline.size(),
				  limit_bytes);
	std::vector<uint8_t> bytes(cmdline.begin(), cmdline.end());
	bytes.push_back(0);
	return memory.write_bytes(layout::kCmdlineAddr, bytes);
}

Result<BootEntry> load_linux(const GuestMemory &memory, const KernelFiles &files)
{
	auto header = read_setup_header(files.bzimage);
	if (!header)
		return header.error();
	boot_params params = *header;
	setup_header &hdr = params.hdr;

	uint64_t setup_sectors = hdr.setup_sects ? hdr.setup_sects : 4;  // boot.rst: 0 means 4
	uint64_t setup_size = (setup_sectors + 1) * 512;
	if (setup_size >= files.bzimage.size())
		return make_error("not a bzImage: setup ({} bytes) fills the whole file", setup_size);
	auto kernel = files.bzimage.subspan(setup_size);

	// The kernel needs init_size bytes from its load address to decompress.
	uint64_t low_ram_end = memory.regions().front().end();
	uint64_t kernel_end =
		layout::kHighMemoryStart + align_up(std::max<uint64_t>(kernel.size(), hdr.init_size), kPageSize);
	if (kernel_end > low_ram_end)
		return make_error("the kernel needs {} MiB to decompress but the guest has {} MiB",
				  (kernel_end + (1 << 20) - 1) >> 20, low_ram_end >> 20);
	KAIROS_TRY(memory.write_bytes(layout::kHighMemoryStart, kernel));

	// The command line, NUL-terminated, within the kernel's limit.
	uint64_t cmdline_limit = std::min<uint64_t>(hdr.cmdline_size, layout::kCmdlineMaxSize - 1);
	KAIROS_TRY(write_kernel_cmdline(memory, files.cmdline, cmdline_limit));
	hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdlineAddr);

	// The initrd goes as high as the kernel allows, above the kernel.
	if (!files.initrd.empty()) {
		uint64_t highest = std::min<uint64_t>(uint64_t{hdr.initrd_addr_max} + 1, low_ram_end);
		if (files.initrd.size() > highest || align_down(highest - files.initrd.size(), kPageSize) < kernel_end)
			return make_error("the initrd ({} MiB) and kernel do not fit in {} MiB of guest RAM",
					  files.initrd.size() >> 20, low_ram_end >> 20);
		uint64_t initrd_address = align_down(highest - files.initrd.size(), kPageSize);
		KAIROS_TRY(memory.write_bytes(initrd_address, files.initrd));
		hdr.ramdisk_image = static_cast<uint32_t>(initrd_address);
		hdr.ramdisk_size = static_cast<uint32_t>(files.initrd.size());
	}

	hdr.type_of_loader = kLoaderTypeUndefined;
	auto e820 = build_e820_map(memory.ram_size());
	params.e820_entries = static_cast<uint8_t>(e820.size());
	for (size_t i = 0; i < e820.size(); ++i) {
		params.e820_table[i].addr = e820[i].address;
		params.e820_table[i].size = e820[i].size;
		params.e820_table[i].type = e820[i].type;
	}
	KAIROS_TRY(memory.write(layout::kZeroPageAddr, params));

	if (auto tables = write_identity_page_tables(memory); !tables)
		return make_error("boot page tables: {}", tables.error().message);
	if (auto gdt = write_boot_gdt(memory); !gdt)
		return make_error("boot GDT: {}", gdt.error().message);
	return BootEntry{layout::kHighMemoryStart + k64BitEntryOffset, layout::kZeroPageAddr};
}

}  // namespace kairos::vmm
