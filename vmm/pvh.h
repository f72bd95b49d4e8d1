// Booting an uncompressed ELF vmlinux through its PVH entry point (Xen's
// docs/misc/pvh.pandoc, public/arch-x86/hvm/start_info.h; Linux's
// arch/x86/platform/pvh/). The kernel skips its own decompression, which
// takes seconds in a nested machine. The vCPU enters in 32-bit protected
// mode without paging, EBX pointing at a struct hvm_start_info that carries
// the command line, the initrd, the RSDP and the memory map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/boot.h"
#include "vmm/guest_memory.h"
#include "vmm/image_source.h"

namespace kairos::vmm {

// The start-of-day structures, version 1, as start_info.h lays them out.
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;  // "xEn3" with the top bit of each byte cleared
inline constexpr uint32_t kHvmStartVersion = 1;         // adds the memory map

struct HvmStartInfo {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;  // version 1 from here
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct HvmModlistEntry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

// Types as e820's (XEN_HVM_MEMMAP_TYPE_RAM = 1, _RESERVED = 2, ...).
struct HvmMemmapEntry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

// The ELF note that names the 32-bit entry (Xen's elfnote.h).
inline constexpr uint32_t kXenElfnotePhys32Entry = 18;

// What the kernel's setup header says for a bzImage; a vmlinux has none,
// so the x86 COMMAND_LINE_SIZE (2048) less its NUL.
inline constexpr uint64_t kPvhCmdlineLimit = 2047;

// One PT_LOAD segment, already checked against the file and guest RAM.
struct ElfSegment {
	uint64_t file_offset;
	uint64_t file_size;
	uint64_t paddr;
	uint64_t mem_size;
};

struct PvhKernel {
	std::vector<ElfSegment> segments;
	uint32_t entry;  // XEN_ELFNOTE_PHYS32_ENTRY
	uint64_t end;    // the highest byte any segment occupies, plus one
};

// Does the image start with the ELF magic? (Then it is booted as PVH, and
// every other check is parse_pvh_kernel's.)
bool is_elf(std::span<const uint8_t> image);

// Checks an ELF64 x86-64 executable: its header, that every program header
// and PT_LOAD segment lies inside the file, that the segments load within
// [layout::kHighMemoryStart, ram_end) without overlapping, and that a PT_NOTE
// holds the PVH entry, inside a segment. Reads only the headers and notes
// (a PT_NOTE of at most 1 MiB). Errors say what is wrong in one line.
Result<PvhKernel> parse_pvh_kernel(const ImageSource &image, uint64_t ram_end);
Result<PvhKernel> parse_pvh_kernel(std::span<const uint8_t> image, uint64_t ram_end);

// Loads the segments (read from `vmlinux` straight into guest memory), the
// initrd (as the one module), the command line and the start info with the
// memory map; the ACPI tables are the caller's, at layout::kAcpiTablesAddr.
// Returns the 32-bit entry and the start info's GPA.
Result<BootEntry> load_pvh(const GuestMemory &memory, const ImageSource &vmlinux, std::span<const uint8_t> initrd,
			   const std::string &cmdline);
// The same, from a buffer (files.bzimage holds the vmlinux).
Result<BootEntry> load_pvh(const GuestMemory &memory, const KernelFiles &files);

}  // namespace kairos::vmm
