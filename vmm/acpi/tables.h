// The layouts of the ACPI system description tables a small x86 machine
// needs (after Firecracker's acpi-tables crate: sdt.rs, rsdp.rs, fadt.rs,
// madt.rs): each function returns a table with its length and checksum
// filled in. Which values a machine puts in them is vmm/acpi.cpp's
// business; the AML inside a DSDT comes from vmm/acpi/aml.h.
//
// Section numbers are those of the ACPI 6.4 specification.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kairos::vmm::acpi {

using Bytes = std::vector<uint8_t>;

// System description table header (5.2.6): 36 bytes.
inline constexpr size_t kHeaderSize = 36;
// RSDP structure (5.2.5.3), revision 2: 36 bytes.
inline constexpr size_t kRsdpSize = 36;
// FADT revision 6 (5.2.9): 276 bytes.
inline constexpr size_t kFadtSize = 276;

// Who made a table: the header's OEM and creator fields (5.2.6). Text is
// padded with spaces to the field's width (6, 8 and 4 characters).
struct TableIds {
	std::string_view oem_id;
	std::string_view oem_table_id;
	uint32_t oem_revision = 0;
	std::string_view creator_id;
	uint32_t creator_revision = 0;
};

// A table of the given signature and revision: the header (5.2.6), then
// body, with length and checksum set.
Bytes table(std::string_view signature, uint8_t revision, const TableIds &ids, const Bytes &body);

// Generic Address Structure (5.2.3.2).
struct GenericAddress {
	uint8_t address_space = 0;
	uint8_t bit_width = 0;
	uint8_t bit_offset = 0;
	uint8_t access_size = 0;
	uint64_t address = 0;

	// An 8-bit register in system I/O space, accessed a byte at a time.
	static GenericAddress system_io_byte(uint16_t port);
};

// RSDP (5.2.5.3), revision 2 (ACPI 2.0+): points at the XSDT only, no
// RSDT. Both checksums set.
Bytes rsdp(std::string_view oem_id, uint64_t xsdt_address);

// XSDT (5.2.8): the 64-bit addresses of the other tables, the DSDT aside.
Bytes xsdt(const TableIds &ids, const std::vector<uint64_t> &tables);

// FADT (5.2.9), revision 6 (ACPI 6.0 and later; exactly Linux 6.1's struct
// acpi_table_fadt, so ACPICA neither truncates nor zero-extends it). Only
// the fields a hardware-reduced machine (4.1) uses; the PM1/PM2/GPE/PM
// timer blocks, SCI and SMI fields stay zero, and the DSDT is given by
// X_DSDT only.
struct Fadt {
	uint8_t preferred_pm_profile = 0;
	uint8_t century = 0;                   // CMOS index of the RTC century register, 0 if none
	uint16_t boot_architecture_flags = 0;  // IAPC_BOOT_ARCH (5.2.9.3)
	uint32_t flags = 0;                    // fixed feature flags (5.2.9)
	GenericAddress reset_register;         // RESET_REG (4.8.3.6)
	uint8_t reset_value = 0;
	uint8_t minor_version = 0;              // FADT Minor Version: 4 for ACPI 6.4
	uint64_t dsdt_address = 0;              // X_DSDT
	GenericAddress sleep_control_register;  // SLEEP_CONTROL_REG (4.8.3.7)
	GenericAddress sleep_status_register;   // SLEEP_STATUS_REG
	std::string_view hypervisor_vendor;     // 8 characters, space padded
};
Bytes fadt(const TableIds &ids, const Fadt &fadt);

// MADT (5.2.12), revision 5: the local APIC address, flags (5.2.12, table
// "Multiple APIC Flags"), then interrupt controller structures built by
// the madt_* functions.
Bytes madt(const TableIds &ids, uint32_t local_apic_address, uint32_t flags, const std::vector<Bytes> &controllers);
// Processor Local APIC structure (5.2.12.2).
Bytes madt_local_apic(uint8_t processor_uid, uint8_t apic_id, uint32_t flags);
// I/O APIC structure (5.2.12.3).
Bytes madt_io_apic(uint8_t io_apic_id, uint32_t address, uint32_t gsi_base);
// Local APIC NMI structure (5.2.12.7): processor_uid 0xff means all.
Bytes madt_local_apic_nmi(uint8_t processor_uid, uint16_t flags, uint8_t lint);

// DSDT (5.2.11.1), revision 2 (integers are 64-bit): the header, then AML
// terms (vmm/acpi/aml.h) in order.
Bytes dsdt(const TableIds &ids, const std::vector<Bytes> &terms);

}  // namespace kairos::vmm::acpi
