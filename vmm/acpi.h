// Minimal hardware-reduced ACPI tables (after Firecracker's acpi/ and QEMU's
// microvm): what Linux needs to power the machine off and reset it through
// devices::AcpiPm, to find the CPUs and the IOAPIC (MADT), and to find the
// ISA devices whose interrupts it no longer assumes.
//
// Hardware-reduced (ACPI 6.4 4.1) means no PM1 event/control blocks, no SCI,
// no PM timer and no FACS: only the FADT's sleep control/status and reset
// registers, which one small device implements. Linux then also skips the
// 8259 and the PIT (arch/x86/kernel/acpi/boot.c, acpi_generic_reduced_hw_init)
// and drops its default ISA IRQ 0-15 identity routing, so an ISA device's
// interrupt works only if the DSDT names the device and its IRQ
// (AcpiIsaDevice); a driver's hard-coded IRQ number maps to nothing.
//
// This file holds what this machine puts in its tables; how tables and AML
// are encoded, for any machine, is in vmm/acpi/ (tables.h, aml.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/layout.h"

namespace kairos::vmm {

// The ACPI reset register (ACPI 6.4 4.8.3.6): the port right after the sleep
// status register (layout::kPortAcpiSleepStatus), so that devices::AcpiPm
// covers all three registers as one bus range. Not 0xcf9, which is the PCI
// reset control register on PC chipsets. To move into vmm/layout.h.

// The tables share the BIOS area with the MP table: they must end before it
// (layout::kMpTableAddr - layout::kAcpiTablesAddr).
inline constexpr uint64_t kAcpiTablesMaxSize = 0x10000;

// As for the MP table: LAPIC ids 0..253, the IOAPIC takes id vcpu_count, and
// 0xff is the xAPIC broadcast id (Intel SDM vol. 3A 10.6.2.1).
inline constexpr uint32_t kAcpiMaxVcpus = layout::kMaxApicCpus;

struct AcpiIoRange {
	uint16_t base;
	uint8_t length;
};

// A legacy ISA device, described in the DSDT under \_SB as
//	Device (name) { Name (_HID, EisaId (hid)) Name (_UID, uid)
//	                Name (_CRS, ResourceTemplate () { IO ... IRQNoFlags ... }) }
// which Linux's PNP ACPI layer turns into a device with a mapped IRQ.
struct AcpiIsaDevice {
	std::string name;  // ACPI name segment, 1-4 of [A-Z0-9_], e.g. "COM1"
	// _HID: an EISA PNP id such as "PNP0501" (encoded as EisaId), or an
	// ACPI id of 4 characters and 4 hex digits such as "KAIR0001" (a string).
	std::string hid;
	uint32_t uid = 0;  // tells apart devices with the same _HID
	std::vector<AcpiIoRange> io;
	// ISA IRQ, which is GSI n (no interrupt source overrides): edge
	// triggered, active high. Empty when the device raises none.
	std::optional<uint8_t> irq;
};

// A memory-mapped device, described in the DSDT under \_SB as
//	Device (name) { Name (_HID, hid) Name (_UID, uid)
//	                Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, base, length)
//	                                                  Interrupt (ResourceConsumer, Edge, ActiveHigh,
//	                                                             Exclusive) {gsi} }) }
// Linux's virtio_mmio binds _HID "LNRO0005" (drivers/virtio/virtio_mmio.c,
// its acpi_match_table) and takes the page and the interrupt from _CRS.
struct AcpiMmioDevice {
	std::string name;  // ACPI name segment, e.g. "VR00"
	std::string hid;   // an ACPI id such as "LNRO0005" (a string)
	uint32_t uid = 0;
	uint32_t base = 0;
	uint32_t length = 0;
	uint32_t gsi = 0;  // edge triggered, active high: what the device's thread pulses
};

struct AcpiOptions {
	uint32_t vcpu_count = 1;  // LAPIC ids and processor UIDs 0..n-1
	uint8_t ioapic_id = 0;
	uint32_t ioapic_address = 0;
	uint32_t ioapic_gsi_base = 0;
	uint32_t lapic_address = 0;
	// System I/O ports of the FADT's 8-bit registers.
	uint16_t sleep_control_port = 0;
	uint16_t sleep_status_port = 0;
	uint16_t reset_port = 0;
	uint8_t reset_value = 0;
	// SLP_TYP of S5, the value \_S5 hands the guest for "poweroff".
	uint8_t soft_off_sleep_type = 0;
	// CMOS index of the RTC's century register; 0 if there is none.
	uint8_t rtc_century_index = 0;
	std::vector<AcpiIsaDevice> isa_devices;
	// A power button the VMM presses by pulsing this ISA IRQ (edge, active
	// high): \_SB.PWRB, a control method power button (_HID PNP0C0C,
	// 4.8.2.2.1.2), and \_SB.GED0, a Generic Event Device (_HID ACPI0013,
	// 5.6.9) whose _CRS holds the IRQ and whose _EVT does Notify (PWRB,
	// 0x80). A hardware-reduced machine has no fixed power button, so the
	// GED is its one way in; Linux binds the GED itself (drivers/acpi/
	// evged.c) and PWRB with the button driver, which reports KEY_POWER.
	std::optional<uint8_t> power_button_irq;
	std::vector<AcpiMmioDevice> mmio_devices;  // after the ISA devices
};

// Linux's virtio_mmio binds this _HID (ACPI id, "LNRO" for Linaro).
inline constexpr const char *kVirtioMmioHid = "LNRO0005";

// Kairos's machine: the layout.h addresses, devices::AcpiPm's registers, the
// IOAPIC id the MP table uses (vcpu_count), and the ISA devices the VMM
// registers (COM1, the i8042, the CMOS RTC), the power button on
// layout::kIrqPowerButton, and the first `virtio_mmio_devices` virtio-mmio
// slots (layout::kVirtioMmioBase; slot n is "VRnn" with _UID n), after them.
AcpiOptions acpi_options_for_machine(uint32_t vcpu_count, uint32_t virtio_mmio_devices = 0);

// RSDP, XSDT, FADT, DSDT and MADT, laid out for guest-physical base_address
// (16-byte aligned, so the RSDP is where Linux's scan of 0xe0000-0xfffff
// looks) with every length and checksum filled in. Fails on options no
// guest could use: no vCPUs or more than kAcpiMaxVcpus, a bad name or id.
Result<std::vector<uint8_t>> build_acpi_tables(uint64_t base_address, const AcpiOptions &options);

// Linux on a hardware-reduced ACPI machine without EFI, given no "reboot="
// option, reboots through EFI (arch/x86/kernel/reboot.c, reboot_init() and
// efi_reboot_required()), which fails, and then jumps to the BIOS reset vector
// in real mode (machine_real_restart()). build_reset_vector() is 16 bytes of
// 16-bit code for that vector that write the ACPI reset register, so a plain
// "reboot" still ends in devices::AcpiPm. "reboot=a" or "reboot=k" never get
// there.
std::vector<uint8_t> build_reset_vector(const AcpiOptions &options);

// Where the RSDP of a blob built for base_address is: for the zero page's
// acpi_rsdp_addr (struct boot_params offset 0x070, Documentation/x86/
// zero-page.rst). Optional, since Linux also finds the RSDP by scanning.
uint64_t acpi_rsdp_address(uint64_t base_address);

}  // namespace kairos::vmm
