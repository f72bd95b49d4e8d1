// Loading a Linux bzImage and building its zero page, per the x86 boot
// protocol (Linux Documentation/arch/x86/boot.rst), for the 64-bit entry.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/guest_memory.h"

namespace kairos::vmm {

// E820 types (boot.rst, "e820_table"; ACPI 6.4 table 15.312).
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
	uint64_t address;
	uint64_t size;
	uint32_t type;
};

// The guest's physical memory map for ram_size bytes of RAM.
std::vector<E820Entry> build_e820_map(uint64_t ram_size);

// How the boot vCPU enters the kernel: the bzImage's 64-bit entry (long
// mode, identity paging) or a vmlinux's PVH entry (32-bit, no paging).
enum class EntryMode { Linux64, Pvh32 };

// What the vCPU needs to enter the kernel.
struct BootEntry {
	uint64_t entry_point;  // Linux64: protected-mode load address + 0x200
	uint64_t zero_page;    // Linux64: the zero page, in %rsi; Pvh32: hvm_start_info, in %ebx
	EntryMode mode = EntryMode::Linux64;
};

struct KernelFiles {
	std::span<const uint8_t> bzimage;  // or, for load_pvh, the ELF vmlinux
	std::span<const uint8_t> initrd;   // may be empty
	std::string cmdline;
};

// The longest command line the image accepts (its setup header's
// cmdline_size, within Kairos's own page); errors as load_linux's.
Result<uint64_t> kernel_cmdline_limit(std::span<const uint8_t> bzimage);

// Writes the command line, NUL-terminated, at layout::kCmdlineAddr; an
// error when it is longer than limit_bytes (the kernel's, without the NUL).
// Both entries (bzImage and PVH) pass it the same way.
Status write_kernel_cmdline(const GuestMemory &memory, const std::string &cmdline, uint64_t limit_bytes);

// Checks the image's setup header, copies the kernel, initrd and cmdline into
// guest memory, writes the zero page, the boot GDT and identity page tables.
// Errors name what is wrong with the image ("not a bzImage: ...").
Result<BootEntry> load_linux(const GuestMemory &memory, const KernelFiles &files);

// The boot GDT's descriptors, also used to set the vCPU's segment registers.
inline constexpr uint16_t kPvhCodeSelector = 0x08;   // flat 32-bit code, for the PVH entry
inline constexpr uint16_t kBootCodeSelector = 0x10;  // __BOOT_CS
inline constexpr uint16_t kBootDataSelector = 0x18;  // __BOOT_DS
inline constexpr uint16_t kBootTssSelector = 0x20;
std::vector<uint64_t> boot_gdt_entries();
// Writes them at layout::kGdtAddr, and an empty IDT at layout::kIdtAddr.
Status write_boot_gdt(const GuestMemory &memory);

}  // namespace kairos::vmm
