#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "devices/acpi_pm.h"
#include "vmm/acpi.h"
#include "vmm/layout.h"

using kairos::vmm::acpi_options_for_machine;
using kairos::vmm::acpi_rsdp_address;
using kairos::vmm::AcpiOptions;
using kairos::vmm::build_acpi_tables;
using kairos::vmm::build_reset_vector;

namespace {

constexpr uint64_t kBase = kairos::layout::kAcpiTablesAddr;

using Bytes = std::vector<uint8_t>;

uint8_t sum(const Bytes &bytes, size_t begin, size_t length)
{
	return std::accumulate(bytes.begin() + static_cast<long>(begin),
			       bytes.begin() + static_cast<long>(begin + length), uint8_t{0});
}

template <typename T>
T field(const Bytes &bytes, size_t offset)
{
	REQUIRE(offset + sizeof(T) <= bytes.size());
	T value;
	std::memcpy(&value, &bytes[offset], sizeof(T));
	return value;
}

std::string text(const Bytes &bytes, size_t offset, size_t length)
{
	REQUIRE(offset + length <= bytes.size());
	return std::string(bytes.begin() + static_cast<long>(offset),
			   bytes.begin() + static_cast<long>(offset + length));
}

Bytes build(const AcpiOptions &options)
{
	auto blob = build_acpi_tables(kBase, options);
	REQUIRE(blob.ok());
	return std::move(blob).value();
}

// A system description table inside the blob, found through a pointer the
// way the guest does: checks that the pointer lands inside the blob, the
// signature, that the length fits and that the checksum sums to zero.
size_t table_at(const Bytes &blob, uint64_t address, const char *signature)
{
	REQUIRE(address >= kBase);
	size_t offset = address - kBase;
	REQUIRE(offset + 36 <= blob.size());
	CHECK(text(blob, offset, 4) == signature);
	uint32_t length = field<uint32_t>(blob, offset + 4);
	REQUIRE(length >= 36);
	REQUIRE(offset + length <= blob.size());
	CHECK(sum(blob, offset, length) == 0);
	CHECK(text(blob, offset + 10, 6) == "KAIROS");
	CHECK(text(blob, offset + 16, 8) == "KAIROSVM");
	return offset;
}

struct Tables {
	size_t xsdt = 0;
	size_t fadt = 0;
	size_t madt = 0;
	size_t dsdt = 0;
};

Tables find_tables(const Bytes &blob)
{
	Tables tables;
	uint64_t xsdt = field<uint64_t>(blob, 24);
	tables.xsdt = table_at(blob, xsdt, "XSDT");
	uint32_t length = field<uint32_t>(blob, tables.xsdt + 4);
	REQUIRE((length - 36) % 8 == 0);
	for (size_t at = tables.xsdt + 36; at < tables.xsdt + length; at += 8) {
		uint64_t address = field<uint64_t>(blob, at);
		REQUIRE(address - kBase + 4 <= blob.size());
		std::string signature = text(blob, address - kBase, 4);
		if (signature == "FACP")
			tables.fadt = table_at(blob, address, "FACP");
		else if (signature == "APIC")
			tables.madt = table_at(blob, address, "APIC");
		else
			FAIL("unexpected table " << signature << " in the XSDT");
	}
	REQUIRE(tables.fadt != 0);
	REQUIRE(tables.madt != 0);
	tables.dsdt = table_at(blob, field<uint64_t>(blob, tables.fadt + 140), "DSDT");
	return tables;
}

// A Generic Address Structure for an 8-bit system I/O register.
void check_io_register(const Bytes &blob, size_t at, uint16_t port)
{
	CHECK(blob[at] == 1);      // system I/O
	CHECK(blob[at + 1] == 8);  // bit width
	CHECK(blob[at + 2] == 0);  // bit offset
	CHECK(blob[at + 3] == 1);  // byte access
	CHECK(field<uint64_t>(blob, at + 4) == port);
}

// Decodes a PkgLength (ACPI 6.4 20.2.4) at `at`; returns the length it
// encodes (which counts the encoding itself) and sets *size to its size.
size_t package_length(const Bytes &aml, size_t at, size_t *size)
{
	uint8_t lead = aml.at(at);
	size_t follow = lead >> 6;
	*size = 1 + follow;
	if (follow == 0)
		return lead & 0x3f;
	size_t length = lead & 0x0f;
	for (size_t i = 0; i < follow; ++i)
		length |= static_cast<size_t>(aml.at(at + 1 + i)) << (4 + 8 * i);
	return length;
}

struct ParsedMadt {
	uint32_t lapic_address = 0;
	uint32_t flags = 0;
	std::vector<uint8_t> lapic_ids;
	std::vector<uint8_t> processor_uids;
	bool all_enabled = true;
	int ioapics = 0;
	uint8_t ioapic_id = 0;
	uint32_t ioapic_address = 0;
	uint32_t ioapic_gsi_base = 0;
	int nmis = 0;
	uint8_t nmi_processor = 0;
	uint8_t nmi_lint = 0;
	int other_entries = 0;
};

// Walks the MADT's interrupt controller structures (ACPI 6.4 5.2.12).
ParsedMadt walk_madt(const Bytes &blob, size_t madt)
{
	ParsedMadt parsed;
	parsed.lapic_address = field<uint32_t>(blob, madt + 36);
	parsed.flags = field<uint32_t>(blob, madt + 40);
	size_t end = madt + field<uint32_t>(blob, madt + 4);
	size_t at = madt + 44;
	while (at < end) {
		uint8_t type = blob.at(at);
		uint8_t length = blob.at(at + 1);
		REQUIRE(length >= 2);
		REQUIRE(at + length <= end);
		switch (type) {
		case 0:
			CHECK(length == 8);
			parsed.processor_uids.push_back(blob[at + 2]);
			parsed.lapic_ids.push_back(blob[at + 3]);
			parsed.all_enabled &= (field<uint32_t>(blob, at + 4) & 1) != 0;
			break;
		case 1:
			CHECK(length == 12);
			++parsed.ioapics;
			parsed.ioapic_id = blob[at + 2];
			parsed.ioapic_address = field<uint32_t>(blob, at + 4);
			parsed.ioapic_gsi_base = field<uint32_t>(blob, at + 8);
			break;
		case 4:
			CHECK(length == 6);
			++parsed.nmis;
			parsed.nmi_processor = blob[at + 2];
			parsed.nmi_lint = blob[at + 5];
			break;
		default:
			++parsed.other_entries;
		}
		at += length;
	}
	CHECK(at == end);
	return parsed;
}

bool contains(const Bytes &haystack, size_t begin, size_t end, const Bytes &needle)
{
	return std::search(haystack.begin() + static_cast<long>(begin), haystack.begin() + static_cast<long>(end),
			   needle.begin(), needle.end()) != haystack.begin() + static_cast<long>(end);
}

}  // namespace

TEST_CASE("ACPI: the RSDP is valid and points at the XSDT", "[acpi]")
{
	Bytes blob = build(acpi_options_for_machine(1));
	CHECK(acpi_rsdp_address(kBase) == kBase);
	CHECK(kBase % 16 == 0);
	CHECK(text(blob, 0, 8) == "RSD PTR ");
	CHECK(sum(blob, 0, 20) == 0);           // ACPI 1.0 checksum
	CHECK(blob[15] == 2);                   // revision: ACPI 2.0+
	CHECK(field<uint32_t>(blob, 16) == 0);  // no RSDT
	CHECK(field<uint32_t>(blob, 20) == 36);
	CHECK(sum(blob, 0, 36) == 0);  // extended checksum
	CHECK(text(blob, 9, 6) == "KAIROS");
}

TEST_CASE("ACPI: the XSDT lists the FADT and the MADT, with valid checksums", "[acpi]")
{
	for (uint32_t cpus : {1u, 4u, 64u}) {
		Bytes blob = build(acpi_options_for_machine(cpus));
		Tables tables = find_tables(blob);
		CHECK(field<uint32_t>(blob, tables.xsdt + 4) == 36 + 2 * 8);
		// Tables are 8-byte aligned at least (ACPI 6.4 5.2.6).
		CHECK((kBase + tables.fadt) % 8 == 0);
		CHECK((kBase + tables.madt) % 8 == 0);
		CHECK((kBase + tables.dsdt) % 8 == 0);
	}
}

TEST_CASE("ACPI: the FADT is hardware-reduced with sleep and reset registers", "[acpi]")
{
	Bytes blob = build(acpi_options_for_machine(2));
	size_t fadt = find_tables(blob).fadt;
	CHECK(field<uint32_t>(blob, fadt + 4) == 276);
	CHECK(blob[fadt + 8] == 6);  // revision

	uint32_t flags = field<uint32_t>(blob, fadt + 112);
	CHECK((flags & (1u << 20)) != 0);  // HW_REDUCED_ACPI
	CHECK((flags & (1u << 10)) != 0);  // RESET_REG_SUP
	uint16_t boot_arch = field<uint16_t>(blob, fadt + 109);
	CHECK((boot_arch & 1) != 0);         // LEGACY_DEVICES
	CHECK((boot_arch & 2) != 0);         // 8042
	CHECK((boot_arch & (1 << 5)) == 0);  // "CMOS RTC not present" must stay clear
	CHECK(blob[fadt + 108] == 0x32);     // CENTURY

	// No FACS, no SCI, no PM1 blocks in hardware-reduced mode.
	CHECK(field<uint32_t>(blob, fadt + 36) == 0);
	CHECK(field<uint16_t>(blob, fadt + 46) == 0);
	CHECK(field<uint32_t>(blob, fadt + 64) == 0);

	check_io_register(blob, fadt + 116, kairos::layout::kPortAcpiReset);
	CHECK(blob[fadt + 128] == kairos::devices::AcpiPm::kResetValue);
	check_io_register(blob, fadt + 244, kairos::layout::kPortAcpiSleepControl);
	check_io_register(blob, fadt + 256, kairos::layout::kPortAcpiSleepStatus);
	CHECK(text(blob, fadt + 268, 8) == "KAIROS  ");
	CHECK(field<uint32_t>(blob, fadt + 40) == 0);  // the DSDT is in X_DSDT only
}

TEST_CASE("ACPI: the registers the FADT names are the ones AcpiPm decodes", "[acpi]")
{
	using kairos::devices::AcpiPm;
	CHECK(kairos::layout::kPortAcpiSleepControl + AcpiPm::kSleepControlOffset ==
	      kairos::layout::kPortAcpiSleepControl);
	CHECK(kairos::layout::kPortAcpiSleepControl + AcpiPm::kSleepStatusOffset ==
	      kairos::layout::kPortAcpiSleepStatus);
	CHECK(kairos::layout::kPortAcpiSleepControl + AcpiPm::kResetOffset == kairos::layout::kPortAcpiReset);
	CHECK(kairos::layout::kPortAcpiReset != 0xcf9);
}

TEST_CASE("ACPI: the DSDT holds \\_S5 with the sleep type AcpiPm powers off on", "[acpi]")
{
	Bytes blob = build(acpi_options_for_machine(1));
	size_t dsdt = find_tables(blob).dsdt;
	CHECK(blob[dsdt + 8] == 2);  // revision 2: 64-bit integers
	size_t end = dsdt + field<uint32_t>(blob, dsdt + 4);

	// Name (\_S5_, Package (4) { 5, 5, 0, 0 }) is the first term.
	size_t at = dsdt + 36;
	REQUIRE(text(blob, at, 6) == std::string("\x08\\_S5_", 6));
	at += 6;
	REQUIRE(blob[at] == 0x12);  // PackageOp
	size_t size = 0;
	size_t length = package_length(blob, at + 1, &size);
	const uint8_t type = kairos::devices::AcpiPm::kSleepTypeSoftOff;
	CHECK(Bytes(blob.begin() + static_cast<long>(at + 1 + size),
		    blob.begin() + static_cast<long>(at + 1 + length)) == Bytes{4, 0x0a, type, 0x0a, type, 0x00, 0x00});
	at += 1 + length;

	// Then Scope (\_SB_) { devices }, whose PkgLength runs to the table's end.
	REQUIRE(blob.at(at) == 0x10);  // ScopeOp
	length = package_length(blob, at + 1, &size);
	CHECK(at + 1 + length == end);
	CHECK(text(blob, at + 1 + size, 5) == "\\_SB_");
}

TEST_CASE("ACPI: the DSDT describes COM1, the i8042 and the RTC with their resources", "[acpi]")
{
	Bytes blob = build(acpi_options_for_machine(1));
	size_t dsdt = find_tables(blob).dsdt;
	size_t end = dsdt + field<uint32_t>(blob, dsdt + 4);

	// Device names, and EisaId ("PNP0501"), ("PNP0303"), ("PNP0B00") as DWordConsts.
	CHECK(contains(blob, dsdt, end, {'C', 'O', 'M', '1'}));
	CHECK(contains(blob, dsdt, end, {'P', 'S', '2', 'K'}));
	CHECK(contains(blob, dsdt, end, {'R', 'T', 'C', '_'}));
	CHECK(contains(blob, dsdt, end, {0x0c, 0x41, 0xd0, 0x05, 0x01}));
	CHECK(contains(blob, dsdt, end, {0x0c, 0x41, 0xd0, 0x03, 0x03}));
	CHECK(contains(blob, dsdt, end, {0x0c, 0x41, 0xd0, 0x0b, 0x00}));
	// IO (Decode16, 0x3f8, 0x3f8, 1, 8) then IRQNoFlags () {4} and the end tag.
	CHECK(contains(blob, dsdt, end,
		       {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00}));
	// The i8042: data then command port, IRQ 1.
	CHECK(contains(blob, dsdt, end, {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47, 0x01, 0x64,
					 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00, 0x79, 0x00}));
	// The RTC: its two ports and IRQ 8 (rtc-cmos takes its IRQ from here).
	CHECK(contains(blob, dsdt, end,
		       {0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x22, 0x00, 0x01, 0x79, 0x00}));
}

TEST_CASE("ACPI: one LNRO0005 device per virtio-mmio slot, with its page and edge GSI", "[acpi]")
{
	using kairos::layout::kVirtioMmioBase;
	AcpiOptions options = acpi_options_for_machine(1, 2);
	REQUIRE(options.mmio_devices.size() == 2);
	CHECK(options.mmio_devices[1].name == "VR01");
	CHECK(options.mmio_devices[1].uid == 1);
	CHECK(options.mmio_devices[1].base == kVirtioMmioBase + 0x1000);
	CHECK(options.mmio_devices[1].gsi == kairos::layout::kVirtioMmioFirstGsi + 1);
	for (const auto &device : options.mmio_devices) {  // no ISA device's line, nor the button's
		for (const auto &isa : options.isa_devices)
			CHECK(device.gsi != isa.irq);
		CHECK(device.gsi != options.power_button_irq);
	}

	Bytes blob = build(options);
	size_t dsdt = find_tables(blob).dsdt;
	size_t end = dsdt + field<uint32_t>(blob, dsdt + 4);
	for (uint8_t slot : {0, 1}) {
		// Device (VR0n) { Name (_HID, "LNRO0005") Name (_UID, n) Name (_CRS, ...) }
		CHECK(contains(blob, dsdt, end,
			       {'V', 'R', '0', static_cast<uint8_t>('0' + slot), 0x08, '_', 'H', 'I', 'D', 0x0d, 'L',
				'N', 'R', 'O', '0', '0', '0', '5', 0x00}));
		// Memory32Fixed (ReadWrite, base, 0x1000), Interrupt (..., Edge,
		// ActiveHigh, Exclusive) {16 + n}, the end tag.
		uint8_t page = static_cast<uint8_t>(slot * 0x10);
		CHECK(contains(blob, dsdt, end,
			       {0x86, 0x09, 0x00, 0x01, 0x00, page, 0x00, 0xd0, 0x00,
				0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01, static_cast<uint8_t>(16 + slot),
				0x00, 0x00, 0x00, 0x79, 0x00}));
	}
	CHECK_FALSE(contains(blob, dsdt, end, {'V', 'R', '0', '2'}));
	// Without drives, no such device.
	Bytes plain = build(acpi_options_for_machine(1));
	size_t plain_dsdt = find_tables(plain).dsdt;
	CHECK_FALSE(
		contains(plain, plain_dsdt, plain_dsdt + field<uint32_t>(plain, plain_dsdt + 4), {'L', 'N', 'R', 'O'}));
}

TEST_CASE("ACPI: the DSDT has a power button and a GED whose _EVT notifies it", "[acpi]")
{
	Bytes blob = build(acpi_options_for_machine(1));
	size_t dsdt = find_tables(blob).dsdt;
	size_t end = dsdt + field<uint32_t>(blob, dsdt + 4);
	// Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) ... }
	CHECK(contains(blob, dsdt, end, {'P', 'W', 'R', 'B', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0c}));
	// Device (GED0) { Name (_HID, "ACPI0013") ... }
	CHECK(contains(
		blob, dsdt, end,
		{'G', 'E', 'D', '0', 0x08, '_', 'H', 'I', 'D', 0x0d, 'A', 'C', 'P', 'I', '0', '0', '1', '3', 0x00}));
	// its _CRS: IRQNoFlags () {5}, the IRQ the VMM pulses.
	static_assert(kairos::layout::kIrqPowerButton == 5);
	CHECK(contains(blob, dsdt, end, {0x22, 0x20, 0x00, 0x79, 0x00}));
	// Method (_EVT, 1) { Notify (PWRB, 0x80) }
	CHECK(contains(blob, dsdt, end, {0x14, 0x0d, '_', 'E', 'V', 'T', 0x01, 0x86, 'P', 'W', 'R', 'B', 0x0a, 0x80}));

	AcpiOptions none = acpi_options_for_machine(1);
	none.power_button_irq.reset();
	Bytes without = build(none);
	size_t plain = find_tables(without).dsdt;
	CHECK_FALSE(contains(without, plain, plain + field<uint32_t>(without, plain + 4), {'G', 'E', 'D', '0'}));
}

TEST_CASE("ACPI: without ISA devices or a power button the DSDT is just \\_S5", "[acpi]")
{
	AcpiOptions options = acpi_options_for_machine(1);
	options.isa_devices.clear();
	options.power_button_irq.reset();
	Bytes blob = build(options);
	size_t dsdt = find_tables(blob).dsdt;
	// Header, NameOp, \_S5_, PackageOp, PkgLength, count, 2 x (BytePrefix 5), 2 x Zero.
	CHECK(field<uint32_t>(blob, dsdt + 4) == 36 + 1 + 5 + 1 + 1 + 1 + 4 + 2);
}

TEST_CASE("ACPI: the MADT has one enabled LAPIC per vCPU, the IOAPIC and LINT1 NMI", "[acpi]")
{
	for (uint32_t cpus : {1u, 64u}) {
		Bytes blob = build(acpi_options_for_machine(cpus));
		ParsedMadt madt = walk_madt(blob, find_tables(blob).madt);
		CHECK(madt.lapic_address == kairos::layout::kLapicAddr);
		CHECK(madt.flags == 1);  // PCAT_COMPAT
		std::vector<uint8_t> expected(cpus);
		std::iota(expected.begin(), expected.end(), uint8_t{0});
		CHECK(madt.lapic_ids == expected);
		CHECK(madt.processor_uids == expected);
		CHECK(madt.all_enabled);
		CHECK(madt.ioapics == 1);
		CHECK(madt.ioapic_id == cpus);  // as in the MP table
		CHECK(madt.ioapic_address == kairos::layout::kIoapicAddr);
		CHECK(madt.ioapic_gsi_base == 0);
		CHECK(madt.nmis == 1);
		CHECK(madt.nmi_processor == 0xff);
		CHECK(madt.nmi_lint == 1);
		CHECK(madt.other_entries == 0);  // no interrupt source overrides
	}
}

TEST_CASE("ACPI: the tables for 64 vCPUs end below the MP table", "[acpi]")
{
	Bytes blob = build(acpi_options_for_machine(64));
	CHECK(blob.size() <= kairos::vmm::kAcpiTablesMaxSize);
	CHECK(kBase + blob.size() <= kairos::layout::kMpTableAddr);
	CHECK(kairos::layout::kAcpiTablesAddr + kairos::vmm::kAcpiTablesMaxSize == kairos::layout::kMpTableAddr);
}

TEST_CASE("ACPI: a large DSDT still gets a correct multi-byte PkgLength", "[acpi]")
{
	AcpiOptions options = acpi_options_for_machine(1);
	for (uint32_t i = 0; i < 200; ++i)
		options.isa_devices.push_back({fmt::format("D{}", i), "PNP0C02", i, {{0x1000, 1}}, 5});
	Bytes blob = build(options);
	size_t dsdt = find_tables(blob).dsdt;
	size_t end = dsdt + field<uint32_t>(blob, dsdt + 4);
	REQUIRE(end - dsdt > 4096);  // needs a 3-byte PkgLength
	size_t at = dsdt + 36 + 6;
	size_t size = 0;
	at += 1 + package_length(blob, at + 1, &size);
	REQUIRE(blob.at(at) == 0x10);
	size_t length = package_length(blob, at + 1, &size);
	CHECK(size == 3);
	CHECK(at + 1 + length == end);
}

TEST_CASE("ACPI: an ACPI-style _HID is a string, and any ISA IRQ can be named", "[acpi]")
{
	AcpiOptions options = acpi_options_for_machine(1);
	options.isa_devices.push_back({"KRS0", "KAIR0001", 0, {{0x5c0, 16}}, 10});
	Bytes blob = build(options);
	size_t dsdt = find_tables(blob).dsdt;
	size_t end = dsdt + field<uint32_t>(blob, dsdt + 4);
	CHECK(contains(blob, dsdt, end, {0x0d, 'K', 'A', 'I', 'R', '0', '0', '0', '1', 0x00}));
	CHECK(contains(blob, dsdt, end,
		       {0x47, 0x01, 0xc0, 0x05, 0xc0, 0x05, 0x01, 0x10, 0x22, 0x00, 0x04, 0x79, 0x00}));
}

TEST_CASE("ACPI: the reset vector stub writes the reset register", "[acpi]")
{
	Bytes stub = build_reset_vector(acpi_options_for_machine(1));
	REQUIRE(stub.size() == 16);
	CHECK(kairos::layout::kResetVectorAddr + stub.size() == 0x100000);
	// mov al, 6; mov dx, 0x3c2; out dx, al; cli; hlt; jmp $-1
	CHECK(Bytes(stub.begin(), stub.begin() + 10) ==
	      Bytes{0xb0, kairos::devices::AcpiPm::kResetValue, 0xba, 0xc2, 0x03, 0xee, 0xfa, 0xf4, 0xeb, 0xfd});
}

TEST_CASE("ACPI: options no guest could use are refused with a reason", "[acpi]")
{
	AcpiOptions options = acpi_options_for_machine(1);
	options.vcpu_count = 0;
	auto none = build_acpi_tables(kBase, options);
	REQUIRE_FALSE(none.ok());
	CHECK_THAT(none.error().message, Catch::Contains("0 vCPUs"));

	options.vcpu_count = kairos::vmm::kAcpiMaxVcpus + 1;
	CHECK_FALSE(build_acpi_tables(kBase, options).ok());
	options.vcpu_count = kairos::vmm::kAcpiMaxVcpus;
	CHECK(build_acpi_tables(kBase, options).ok());

	options = acpi_options_for_machine(1);
	options.isa_devices[0].name = "COM12";
	auto name = build_acpi_tables(kBase, options);
	REQUIRE_FALSE(name.ok());
	CHECK_THAT(name.error().message, Catch::Contains("COM12"));

	options = acpi_options_for_machine(1);
	options.isa_devices[0].hid = "pnp0501";
	auto hid = build_acpi_tables(kBase, options);
	REQUIRE_FALSE(hid.ok());
	CHECK_THAT(hid.error().message, Catch::Contains("pnp0501"));

	options = acpi_options_for_machine(1);
	options.isa_devices[0].irq = 16;
	CHECK_FALSE(build_acpi_tables(kBase, options).ok());
}
