#include "vmm/acpi/tables.h"

#include "vmm/table_writer.h"

// Section numbers are those of the ACPI 6.4 specification.

namespace kairos::vmm::acpi {
namespace {

constexpr size_t kLengthOffset = 4;
constexpr size_t kChecksumOffset = 9;

constexpr uint8_t kRsdpRevision = 2;
constexpr size_t kRsdpChecksumSize = 20;  // the ACPI 1.0 part
constexpr size_t kRsdpChecksumOffset = 8;
constexpr size_t kRsdpExtendedChecksumOffset = 32;

constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kMadtRevision = 5;
constexpr uint8_t kDsdtRevision = 2;

// Generic Address Structure (5.2.3.2).
constexpr uint8_t kAddressSpaceSystemIo = 1;
constexpr uint8_t kAccessSizeByte = 1;

// MADT interrupt controller structure types and lengths (5.2.12).
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtLocalApicSize = 8;
constexpr uint8_t kMadtIoApic = 1;
constexpr uint8_t kMadtIoApicSize = 12;
constexpr uint8_t kMadtLocalApicNmi = 4;
constexpr uint8_t kMadtLocalApicNmiSize = 6;

// The header with zero length and checksum; table() sets both once the
// body is in place.
TableWriter header(std::string_view signature, uint8_t revision, const TableIds &ids)
{
	TableWriter w;
	w.text(signature, 4);
	w.u32(0);  // length
	w.u8(revision);
	w.u8(0);  // checksum
	w.text(ids.oem_id, 6);
	w.text(ids.oem_table_id, 8);
	w.u32(ids.oem_revision);
	w.text(ids.creator_id, 4);
	w.u32(ids.creator_revision);
	return w;
}

void generic_address(TableWriter &w, const GenericAddress &address)
{
	w.u8(address.address_space);
	w.u8(address.bit_width);
	w.u8(address.bit_offset);
	w.u8(address.access_size);
	w.u64(address.address);
}

}  // namespace

Bytes table(std::string_view signature, uint8_t revision, const TableIds &ids, const Bytes &body)
{
	TableWriter w = header(signature, revision, ids);
	w.append(body);
	Bytes table = std::move(w.bytes);
	put_u32(table, kLengthOffset, static_cast<uint32_t>(table.size()));
	fix_checksum(table, 0, table.size(), kChecksumOffset);
	return table;
}

GenericAddress GenericAddress::system_io_byte(uint16_t port)
{
	return {kAddressSpaceSystemIo, 8, 0, kAccessSizeByte, port};
}

Bytes rsdp(std::string_view oem_id, uint64_t xsdt_address)
{
	TableWriter w;
	w.text("RSD PTR ", 8);
	w.u8(0);  // checksum of the first 20 bytes
	w.text(oem_id, 6);
	w.u8(kRsdpRevision);
	w.u32(0);  // RsdtAddress: an ACPI 2.0+ OS uses the XSDT
	w.u32(static_cast<uint32_t>(kRsdpSize));
	w.u64(xsdt_address);
	w.u8(0);  // extended checksum, of all 36 bytes
	w.zeros(3);
	Bytes rsdp = std::move(w.bytes);
	fix_checksum(rsdp, 0, kRsdpChecksumSize, kRsdpChecksumOffset);
	fix_checksum(rsdp, 0, kRsdpSize, kRsdpExtendedChecksumOffset);
	return rsdp;
}

Bytes xsdt(const TableIds &ids, const std::vector<uint64_t> &tables)
{
	TableWriter w;
	for (uint64_t address : tables)
		w.u64(address);
	return table("XSDT", kXsdtRevision, ids, w.bytes);
}

Bytes fadt(const TableIds &ids, const Fadt &fadt)
{
	TableWriter w;
	w.u32(0);  // FIRMWARE_CTRL: no FACS in hardware-reduced ACPI
	w.u32(0);  // DSDT: 0 since X_DSDT holds it
	w.u8(0);   // reserved
	w.u8(fadt.preferred_pm_profile);
	w.u16(0);        // SCI_INT
	w.u32(0);        // SMI_CMD: no SMM, so the machine is always in ACPI mode
	w.zeros(4);      // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
	w.zeros(8 * 4);  // PM1a_EVT_BLK ... GPE1_BLK
	w.zeros(8);      // PM1_EVT_LEN ... CST_CNT
	w.zeros(8);      // P_LVL2_LAT, P_LVL3_LAT, FLUSH_SIZE, FLUSH_STRIDE
	w.zeros(4);      // DUTY_OFFSET, DUTY_WIDTH, DAY_ALRM, MON_ALRM
	w.u8(fadt.century);
	w.u16(fadt.boot_architecture_flags);
	w.u8(0);  // reserved
	w.u32(fadt.flags);
	generic_address(w, fadt.reset_register);
	w.u8(fadt.reset_value);
	w.u16(0);  // ARM_BOOT_ARCH
	w.u8(fadt.minor_version);
	w.u64(0);                  // X_FIRMWARE_CTRL
	w.u64(fadt.dsdt_address);  // X_DSDT
	w.zeros(8 * 12);           // X_PM1a_EVT_BLK ... X_GPE1_BLK
	generic_address(w, fadt.sleep_control_register);
	generic_address(w, fadt.sleep_status_register);
	w.text(fadt.hypervisor_vendor, 8);
	return table("FACP", kFadtRevision, ids, w.bytes);
}

Bytes madt(const TableIds &ids, uint32_t local_apic_address, uint32_t flags, const std::vector<Bytes> &controllers)
{
	TableWriter w;
	w.u32(local_apic_address);
	w.u32(flags);
	for (const auto &controller : controllers)
		w.append(controller);
	return table("APIC", kMadtRevision, ids, w.bytes);
}

Bytes madt_local_apic(uint8_t processor_uid, uint8_t apic_id, uint32_t flags)
{
	TableWriter w;
	w.u8(kMadtLocalApic);
	w.u8(kMadtLocalApicSize);
	w.u8(processor_uid);
	w.u8(apic_id);
	w.u32(flags);
	return w.bytes;
}

Bytes madt_io_apic(uint8_t io_apic_id, uint32_t address, uint32_t gsi_base)
{
	TableWriter w;
	w.u8(kMadtIoApic);
	w.u8(kMadtIoApicSize);
	w.u8(io_apic_id);
	w.u8(0);  // reserved
	w.u32(address);
	w.u32(gsi_base);
	return w.bytes;
}

Bytes madt_local_apic_nmi(uint8_t processor_uid, uint16_t flags, uint8_t lint)
{
	TableWriter w;
	w.u8(kMadtLocalApicNmi);
	w.u8(kMadtLocalApicNmiSize);
	w.u8(processor_uid);
	w.u16(flags);
	w.u8(lint);
	return w.bytes;
}

Bytes dsdt(const TableIds &ids, const std::vector<Bytes> &terms)
{
	TableWriter w;
	for (const auto &term : terms)
		w.append(term);
	return table("DSDT", kDsdtRevision, ids, w.bytes);
}

}  // namespace kairos::vmm::acpi
