// Pins the exact bytes of Kairos's ACPI tables, captured from the code as it
// was before the AML encoder moved out of vmm/acpi.cpp: a refactor of the
// encoder or the tables must not change one byte the guest sees. A deliberate
// change to the tables updates these bytes in the same commit, with its reason.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "vmm/acpi.h"
#include "vmm/layout.h"

namespace {

using Bytes = std::vector<uint8_t>;

// Captured with build_acpi_tables(layout::kAcpiTablesAddr,
// acpi_options_for_machine(n)), hex, 32 bytes a line: RSDP, XSDT, DSDT,
// MADT, FADT. Changed since: the RTC's _CRS lists IRQ 8 (issue 11, the RTC
// raises its interrupts), 3 bytes more DSDT; the power button and its GED
// (issue 11, kairos ctl shutdown presses it), 79 bytes more DSDT.
constexpr std::string_view kOneVcpuTables = "5253442050545220164b4149524f5302000000002400000030000e0000000000"
					    "9e000000000000000000000000000000585344543400000001834b4149524f53"
					    "4b4149524f53564d010000004b52564d01000000e0010e000000000090010e00"
					    "000000000000000000000000000000004453445419010000023f4b4149524f53"
					    "4b4149524f53564d010000004b52564d01000000085c5f53355f1208040a050a"
					    "05000010450e5c5f53425f5b822b434f4d31085f4849440c41d00501085f5549"
					    "4401085f43525311100a0d4701f803f803010822100079005b82335053324b08"
					    "5f4849440c41d00303085f55494400085f43525311180a154701600060000101"
					    "470164006400010122020079005b822b5254435f085f4849440c41d00b00085f"
					    "55494400085f43525311100a0d470170007000010222000179005b8215505752"
					    "42085f4849440c41d00c0c085f554944005b823647454430085f4849440d4143"
					    "50493030313300085f55494400085f43525311080a052220007900140d5f4556"
					    "540186505752420a8000000000000000415049434600000005634b4149524f53"
					    "4b4149524f53564d010000004b52564d010000000000e0fe0100000000080000"
					    "01000000010c01000000c0fe000000000406ff00000100000000000000000000"
					    "464143501401000006dc4b4149524f534b4149524f53564d010000004b52564d"
					    "0100000000000000000000000000000000000000000000000000000000000000"
					    "0000000000000000000000000000000000000000000000000000000000000000"
					    "000000000000000000000000320700003004100001080001c203000000000000"
					    "06000004000000000000000070000e0000000000000000000000000000000000"
					    "0000000000000000000000000000000000000000000000000000000000000000"
					    "0000000000000000000000000000000000000000000000000000000000000000"
					    "000000000000000000000000000000000000000001080001c003000000000000"
					    "01080001c1030000000000004b4149524f532020";

constexpr std::string_view kFourVcpuTables = "5253442050545220164b4149524f5302000000002400000030000e0000000000"
					     "9e000000000000000000000000000000585344543400000001734b4149524f53"
					     "4b4149524f53564d010000004b52564d01000000f0010e000000000090010e00"
					     "000000000000000000000000000000004453445419010000023f4b4149524f53"
					     "4b4149524f53564d010000004b52564d01000000085c5f53355f1208040a050a"
					     "05000010450e5c5f53425f5b822b434f4d31085f4849440c41d00501085f5549"
					     "4401085f43525311100a0d4701f803f803010822100079005b82335053324b08"
					     "5f4849440c41d00303085f55494400085f43525311180a154701600060000101"
					     "470164006400010122020079005b822b5254435f085f4849440c41d00b00085f"
					     "55494400085f43525311100a0d470170007000010222000179005b8215505752"
					     "42085f4849440c41d00c0c085f554944005b823647454430085f4849440d4143"
					     "50493030313300085f55494400085f43525311080a052220007900140d5f4556"
					     "540186505752420a8000000000000000415049435e00000005214b4149524f53"
					     "4b4149524f53564d010000004b52564d010000000000e0fe0100000000080000"
					     "01000000000801010100000000080202010000000008030301000000010c0400"
					     "0000c0fe000000000406ff0000010000464143501401000006dc4b4149524f53"
					     "4b4149524f53564d010000004b52564d01000000000000000000000000000000"
					     "0000000000000000000000000000000000000000000000000000000000000000"
					     "0000000000000000000000000000000000000000000000000000000032070000"
					     "3004100001080001c20300000000000006000004000000000000000070000e00"
					     "0000000000000000000000000000000000000000000000000000000000000000"
					     "0000000000000000000000000000000000000000000000000000000000000000"
					     "0000000000000000000000000000000000000000000000000000000000000000"
					     "0000000001080001c00300000000000001080001c1030000000000004b414952"
					     "4f532020";

// The DSDT of acpi_options_for_machine(1, 2), one vCPU and two drives: the
// ISA devices and the power button, then two LNRO0005 devices (issue 10, virtio-mmio) with their
// page and GSI. Only the DSDT: the other tables are the 1-vCPU machine's
// above, but for the DSDT's size and address.
constexpr std::string_view kTwoDrivesDsdt = "445344549101000002f54b4149524f534b4149524f53564d010000004b52564d"
					    "01000000085c5f53355f1208040a050a050000104d155c5f53425f5b822b434f"
					    "4d31085f4849440c41d00501085f55494401085f43525311100a0d4701f803f8"
					    "03010822100079005b82335053324b085f4849440c41d00303085f5549440008"
					    "5f43525311180a154701600060000101470164006400010122020079005b822b"
					    "5254435f085f4849440c41d00b00085f55494400085f43525311100a0d470170"
					    "007000010222000179005b821550575242085f4849440c41d00c0c085f554944"
					    "005b823647454430085f4849440d414350493030313300085f55494400085f43"
					    "525311080a052220007900140d5f4556540186505752420a805b823a56523030"
					    "085f4849440d4c4e524f3030303500085f55494400085f435253111a0a178609"
					    "0001000000d00010000089060003011000000079005b823a56523031085f4849"
					    "440d4c4e524f3030303500085f55494401085f435253111a0a17860900010010"
					    "00d0001000008906000301110000007900";

Bytes from_hex(std::string_view hex)
{
	auto nibble = [](char c) { return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10); };
	Bytes bytes;
	for (size_t i = 0; i + 1 < hex.size(); i += 2)
		bytes.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
	return bytes;
}

// The first offset where the blobs differ, or the shorter size: a failure
// then names the byte, not just "not equal".
size_t first_difference(const Bytes &a, const Bytes &b)
{
	size_t i = 0;
	while (i < a.size() && i < b.size() && a[i] == b[i])
		++i;
	return i;
}

void check_tables(uint32_t vcpus, std::string_view golden_hex)
{
	auto built = kairos::vmm::build_acpi_tables(kairos::layout::kAcpiTablesAddr,
						    kairos::vmm::acpi_options_for_machine(vcpus));
	REQUIRE(built.ok());
	Bytes golden = from_hex(golden_hex);
	INFO(vcpus << " vCPUs: " << built->size() << " bytes built, " << golden.size()
		   << " pinned, first difference at " << first_difference(*built, golden));
	CHECK(*built == golden);
}

}  // namespace

TEST_CASE("ACPI: the tables of a 1-vCPU machine are byte for byte the pinned ones", "[acpi]")
{
	check_tables(1, kOneVcpuTables);
}

TEST_CASE("ACPI: the tables of a 4-vCPU machine are byte for byte the pinned ones", "[acpi]")
{
	check_tables(4, kFourVcpuTables);
}

TEST_CASE("ACPI: the DSDT of a machine with two drives is byte for byte the pinned one", "[acpi]")
{
	auto built = kairos::vmm::build_acpi_tables(kairos::layout::kAcpiTablesAddr,
						    kairos::vmm::acpi_options_for_machine(1, 2));
	REQUIRE(built.ok());
	const std::string_view signature = "DSDT";
	auto dsdt = std::search(built->begin(), built->end(), signature.begin(), signature.end());
	REQUIRE(built->end() - dsdt >= 8);
	uint32_t length = dsdt[4] | dsdt[5] << 8 | dsdt[6] << 16 | static_cast<uint32_t>(dsdt[7]) << 24;
	REQUIRE(built->end() - dsdt >= length);
	Bytes golden = from_hex(kTwoDrivesDsdt);
	Bytes table(dsdt, dsdt + length);
	INFO(length << " bytes built, " << golden.size() << " pinned, first difference at "
		    << first_difference(table, golden));
	CHECK(table == golden);
}

TEST_CASE("ACPI: the reset vector stub is byte for byte the pinned one", "[acpi]")
{
	Bytes stub = kairos::vmm::build_reset_vector(kairos::vmm::acpi_options_for_machine(1));
	CHECK(stub == from_hex("b006bac203eefaf4ebfdf4f4f4f4f4f4"));
}
