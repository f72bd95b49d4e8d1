// Every guest-physical address and I/O port Kairos uses, in one place
// (after Firecracker's arch/x86_64/layout.rs).
#pragma once

#include <cstdint>

namespace kairos::layout {

// --- Low memory, below 1 MiB -------------------------------------------------
// Boot-time GDT and IDT for the 64-bit entry (boot.rst "64-bit BOOT PROTOCOL").
inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kIdtAddr = 0x520;
// The zero page (struct boot_params) handed to the kernel in %rsi.
inline constexpr uint64_t kZeroPageAddr = 0x7000;
// Boot stack top, below the zero page.
inline constexpr uint64_t kBootStackTop = 0x6ff0;
// A PVH boot (vmm/pvh.h) has no zero page: its struct hvm_start_info, the
// initrd's module entry and the memory map take that page instead.
inline constexpr uint64_t kPvhStartInfoAddr = 0x7000;
inline constexpr uint64_t kPvhModlistAddr = 0x7040;
inline constexpr uint64_t kPvhMemmapAddr = 0x7080;
inline constexpr uint64_t kPvhMemmapMaxSize = 0x8000 - kPvhMemmapAddr;
// Identity page tables for the first 1 GiB (2 MiB pages): enough to hold the
// kernel, zero page and cmdline until the kernel builds its own tables.
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kIdentityMapSize = 1ULL << 30;
// Kernel command line (boot.rst: anywhere below 0xA0000 after the setup code).
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;
// Extended BIOS data area: reserved in e820 as on a PC.
inline constexpr uint64_t kEbdaStart = 0x9fc00;
// Legacy VGA/BIOS hole, reported as reserved in e820.
inline constexpr uint64_t kLowMemoryEnd = 0xa0000;
// The BIOS read-only area, where Linux scans for the ACPI RSDP (ACPI 6.4
// 5.2.5.1) and the MP floating pointer (MP spec 1.4 4.1). 64 KiB each: room
// for the MP entries of 64 vCPUs, which would not fit the 1 KiB of EBDA.
inline constexpr uint64_t kBiosAreaStart = 0xe0000;
inline constexpr uint64_t kBiosAreaEnd = 0x100000;
inline constexpr uint64_t kAcpiTablesAddr = 0xe0000;
inline constexpr uint64_t kMpTableAddr = 0xf0000;
inline constexpr uint64_t kMpTableMaxSize = 0x1000;
// The real-mode reset vector F000:FFF0, where Linux jumps for a BIOS reboot;
// a tiny stub there writes the ACPI reset register (vmm/acpi.h).
inline constexpr uint64_t kResetVectorAddr = 0xffff0;

// --- High memory ---------------------------------------------------------------
// The protected-mode kernel is loaded at 1 MiB (boot.rst, "LOADING THE REST").
// A vmlinux's segments load where its program headers say, at or above it:
// everything below is Kairos's own (tables, firmware, cmdline).
inline constexpr uint64_t kHighMemoryStart = 0x100000;
// RAM above this is split around a 1 GiB MMIO hole below 4 GiB, as PCs do.
inline constexpr uint64_t kMmioGapStart = 0xc0000000;
inline constexpr uint64_t kMmioGapEnd = 0x100000000;

// virtio-mmio devices (virtio 1.2 section 4.2): one register page per
// slot, slot n at kVirtioMmioBase + n * kVirtioMmioSlotSize, in the MMIO
// gap far from the IOAPIC, LAPIC and the KVM pages near 4 GiB. Slot n is
// used in config order: the drives, then network, then vsock; the DSDT
// describes each used slot (vmm/acpi.h).
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;
inline constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
inline constexpr uint32_t kVirtioMmioSlots = 8;

// KVM needs three pages for the VMX TSS and one for the identity map of
// real mode (KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR); put them just
// below the BIOS ROM shadow inside the MMIO gap.
inline constexpr uint64_t kIdentityMapPageAddr = 0xfeffc000;
inline constexpr uint64_t kTssAddr = 0xfeffd000;

// Interrupt controllers (Intel SDM vol. 3A 10.4.1, 82093AA datasheet).
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
inline constexpr uint32_t kIoapicPins = 24;
// ISA interrupt lines 0-15: identity-mapped to IOAPIC pins (MP table, MADT).
inline constexpr uint32_t kIsaIrqCount = 16;
// The interrupt of virtio-mmio slot n is GSI kVirtioMmioFirstGsi + n: the
// IOAPIC pins above the ISA lines, 16-23 for 8 slots. ISA IRQs 0-15 are
// GSIs 0-15 (no interrupt source overrides in the MADT or MP table) and
// some are taken (timer 0, keyboard 1, COM1 4, the power button 5, RTC 8,
// the Kairos upcall 10); no ISA driver or legacy default ever claims a pin above 15, and
// pci=off leaves them to the DSDT alone.
inline constexpr uint32_t kVirtioMmioFirstGsi = kIsaIrqCount;
static_assert(kVirtioMmioFirstGsi + kVirtioMmioSlots <= kIoapicPins, "a virtio-mmio GSI beyond the IOAPIC");
static_assert(kVirtioMmioBase >= kMmioGapStart &&
		      kVirtioMmioBase + kVirtioMmioSlots * kVirtioMmioSlotSize <= kIdentityMapPageAddr,
	      "the virtio-mmio window must lie in the MMIO gap, below KVM's pages");
// xAPIC ids are 8 bits and 0xff is the broadcast id: 254 CPUs at most
// (MP table and MADT alike).
inline constexpr uint32_t kMaxApicCpus = 254;

// --- I/O ports and ISA interrupt lines ---------------------------------------------
inline constexpr uint16_t kPortCom1 = 0x3f8;
inline constexpr uint16_t kComPortSize = 8;
inline constexpr uint32_t kIrqCom1 = 4;
inline constexpr uint16_t kPortI8042Data = 0x60;
inline constexpr uint16_t kPortI8042Command = 0x64;
inline constexpr uint16_t kPortRtc = 0x70;
inline constexpr uint16_t kRtcPortSize = 2;
inline constexpr uint32_t kIrqRtc = 8;
// POST diagnostic port: Linux writes it as an I/O delay; swallow it quietly.
inline constexpr uint16_t kPortPostCode = 0x80;
// ACPI hardware-reduced sleep control/status registers (ACPI 6.x 4.8.3.7).
inline constexpr uint16_t kPortAcpiSleepControl = 0x3c0;
inline constexpr uint16_t kPortAcpiSleepStatus = 0x3c1;
inline constexpr uint16_t kPortAcpiReset = 0x3c2;
// The ACPI power button's interrupt (the DSDT's GED, vmm/acpi.h): an ISA
// IRQ no legacy device of a PC claims when it is absent (5 was LPT2's).
inline constexpr uint32_t kIrqPowerButton = 5;
// The Kairos paravirtual device's doorbell ports (see kairos_abi.h).
inline constexpr uint16_t kPortKairosBase = 0x5c0;
// The IOAPIC line of the Kairos event-channel upcall.
inline constexpr uint32_t kIrqKairosUpcall = 10;

}  // namespace kairos::layout
