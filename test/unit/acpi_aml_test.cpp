// The generic AML encoder and table layouts (vmm/acpi/), piece by piece,
// against encodings worked out by hand from the ACPI 6.4 specification.
#include <catch2/catch.hpp>

#include <cstdint>
#include <numeric>
#include <vector>

#include "vmm/acpi/aml.h"
#include "vmm/acpi/tables.h"

namespace aml = kairos::vmm::aml;
namespace acpi = kairos::vmm::acpi;

namespace {

using Bytes = std::vector<uint8_t>;

uint8_t sum(const Bytes &bytes, size_t length)
{
	return std::accumulate(bytes.begin(), bytes.begin() + static_cast<long>(length), uint8_t{0});
}

Bytes concat(std::initializer_list<Bytes> parts)
{
	Bytes out;
	for (const auto &part : parts)
		out.insert(out.end(), part.begin(), part.end());
	return out;
}

}  // namespace

TEST_CASE("AML: a PkgLength takes one byte up to 63, then 2, 3 and 4", "[acpi][aml]")
{
	// The encoded value counts the encoding itself (20.2.4).
	CHECK(aml::package_length(0) == Bytes{0x01});
	CHECK(aml::package_length(62) == Bytes{0x3f});  // 63: the largest one-byte value
	// 63 + 1 + 1 = 65 = 0x41: two bytes, lead 0x40 | low nibble, then 0x41 >> 4.
	CHECK(aml::package_length(63) == Bytes{0x41, 0x04});
	CHECK(aml::package_length(4093) == Bytes{0x4f, 0xff});           // 4095: the largest two-byte value
	CHECK(aml::package_length(4094) == Bytes{0x81, 0x00, 0x01});     // 4097 = 0x1001
	CHECK(aml::package_length(0xffffc) == Bytes{0x8f, 0xff, 0xff});  // 1 MiB - 1: the largest three-byte value
	CHECK(aml::package_length(0xffffd) == Bytes{0xc1, 0x00, 0x00, 0x01});  // 1 MiB + 1
	CHECK(aml::package_length(aml::kMaxPackageLength - 4) == Bytes{0xcf, 0xff, 0xff, 0xff});
	CHECK(aml::package_length(aml::kMaxPackageLength - 3).empty());  // beyond 28 bits
}

TEST_CASE("AML: name segments are padded with '_' and checked", "[acpi][aml]")
{
	CHECK(aml::name_segment("COM1") == Bytes{'C', 'O', 'M', '1'});
	CHECK(aml::name_segment("RTC") == Bytes{'R', 'T', 'C', '_'});
	CHECK(aml::name_segment("_S5") == Bytes{'_', 'S', '5', '_'});
	CHECK(aml::root_name("_SB") == Bytes{'\\', '_', 'S', 'B', '_'});

	CHECK(aml::valid_name_segment("COM1"));
	CHECK(aml::valid_name_segment("_HID"));
	CHECK(aml::valid_name_segment("A"));
	CHECK_FALSE(aml::valid_name_segment(""));
	CHECK_FALSE(aml::valid_name_segment("COM12"));  // five characters
	CHECK_FALSE(aml::valid_name_segment("1COM"));   // leading digit
	CHECK_FALSE(aml::valid_name_segment("com1"));   // lower case
	CHECK_FALSE(aml::valid_name_segment("CO-1"));
}

TEST_CASE("AML: integers take the shortest encoding of each width", "[acpi][aml]")
{
	CHECK(aml::integer(0) == Bytes{0x00});  // ZeroOp
	CHECK(aml::integer(1) == Bytes{0x01});  // OneOp
	CHECK(aml::integer(2) == Bytes{0x0a, 0x02});
	CHECK(aml::integer(0xff) == Bytes{0x0a, 0xff});
	CHECK(aml::integer(0x100) == Bytes{0x0b, 0x00, 0x01});
	CHECK(aml::integer(0xffff) == Bytes{0x0b, 0xff, 0xff});
	CHECK(aml::integer(0x10000) == Bytes{0x0c, 0x00, 0x00, 0x01, 0x00});
	CHECK(aml::integer(0xffffffff) == Bytes{0x0c, 0xff, 0xff, 0xff, 0xff});
	CHECK(aml::integer(0x100000000) == Bytes{0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00});
	CHECK(aml::integer(0x0123456789abcdef) == Bytes{0x0e, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01});
}

TEST_CASE("AML: strings end in a NUL, EISA ids are packed DWords", "[acpi][aml]")
{
	CHECK(aml::string("KAIR0001") == Bytes{0x0d, 'K', 'A', 'I', 'R', '0', '0', '0', '1', 0x00});
	CHECK(aml::string("") == Bytes{0x0d, 0x00});
	// ASL's EisaId ("PNP0501") compiles to 0x0105D041.
	CHECK(aml::eisa_id("PNP0501") == Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01});
	CHECK(aml::eisa_id("PNP0B00") == Bytes{0x0c, 0x41, 0xd0, 0x0b, 0x00});
}

TEST_CASE("AML: buffers count their data and carry a PkgLength", "[acpi][aml]")
{
	CHECK(aml::buffer({}) == Bytes{0x11, 0x02, 0x00});
	CHECK(aml::buffer({1, 2, 3}) == Bytes{0x11, 0x06, 0x0a, 0x03, 0x01, 0x02, 0x03});

	// 100 bytes of data: BufferSize 0x0a 0x64, so 102 bytes follow a
	// two-byte PkgLength of 104 = 0x68.
	Bytes data(100, 0xaa);
	Bytes large = aml::buffer(data);
	REQUIRE(large.size() == 1 + 2 + 2 + 100);
	CHECK(Bytes(large.begin(), large.begin() + 5) == Bytes{0x11, 0x48, 0x06, 0x0a, 0x64});
	CHECK(Bytes(large.begin() + 5, large.end()) == data);

	// 5000 bytes: a three-byte PkgLength of 3 + 3 + 5000 = 0x138e.
	Bytes huge = aml::buffer(Bytes(5000, 0));
	REQUIRE(huge.size() == 1 + 3 + 3 + 5000);
	CHECK(Bytes(huge.begin(), huge.begin() + 7) == Bytes{0x11, 0x8e, 0x38, 0x01, 0x0b, 0x88, 0x13});
}

TEST_CASE("AML: Name, Package, Scope and Device", "[acpi][aml]")
{
	CHECK(aml::name(aml::name_segment("_UID"), aml::integer(0)) == Bytes{0x08, '_', 'U', 'I', 'D', 0x00});
	CHECK(aml::package({aml::integer(5), aml::integer(5), aml::integer(0), aml::integer(0)}) ==
	      Bytes{0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00});
	CHECK(aml::package({}) == Bytes{0x12, 0x02, 0x00});
	CHECK(aml::scope(aml::root_name("_SB"), {}) == Bytes{0x10, 0x06, '\\', '_', 'S', 'B', '_'});
	Bytes uid = aml::name(aml::name_segment("_UID"), aml::integer(1));
	CHECK(aml::device(aml::name_segment("COM1"), {uid}) ==
	      Bytes{0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x01});
	// Scope's PkgLength covers the terms inside it.
	Bytes scope = aml::scope(aml::root_name("_SB"), {uid, uid});
	CHECK(scope == concat({{0x10, 0x12, '\\', '_', 'S', 'B', '_'}, uid, uid}));
}

TEST_CASE("AML: Method with its argument count, and Notify", "[acpi][aml]")
{
	Bytes notify = aml::notify(aml::name_segment("PWRB"), aml::integer(0x80));
	CHECK(notify == Bytes{0x86, 'P', 'W', 'R', 'B', 0x0a, 0x80});
	// PkgLength counts itself, the name, the flags byte and the terms.
	CHECK(aml::method(aml::name_segment("_EVT"), 1, {notify}) ==
	      concat({{0x14, 0x0d, '_', 'E', 'V', 'T', 0x01}, notify}));
	CHECK(aml::method(aml::name_segment("_STA"), 0, {}) == Bytes{0x14, 0x06, '_', 'S', 'T', 'A', 0x00});
	// Only bits 0-2 hold the count; the serialize flag stays clear.
	CHECK(aml::method(aml::name_segment("M"), 15, {})[6] == 0x07);
}

TEST_CASE("AML: resource descriptors and the template's end tag", "[acpi][aml]")
{
	Bytes io = aml::io_port(0x3f8, 0x3f8, 1, 8);
	CHECK(io == Bytes{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08});
	CHECK(aml::io_port(0x60, 0x64, 4, 1) == Bytes{0x47, 0x01, 0x60, 0x00, 0x64, 0x00, 0x04, 0x01});
	Bytes irq = aml::irq_no_flags(4);
	CHECK(irq == Bytes{0x22, 0x10, 0x00});
	CHECK(aml::irq_no_flags(15) == Bytes{0x22, 0x00, 0x80});
	CHECK(aml::irq_no_flags(16) == Bytes{0x22, 0x00, 0x00});  // not an ISA IRQ: empty mask

	// Memory32Fixed (ReadWrite, 0xd0000000, 0x1000): 6.4.3.4.
	CHECK(aml::memory32_fixed(0xd0000000, 0x1000) ==
	      Bytes{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00});
	// Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {17}: 6.4.3.6,
	// flags 0x03, one interrupt.
	CHECK(aml::extended_interrupt_edge(17) == Bytes{0x89, 0x06, 0x00, 0x03, 0x01, 0x11, 0x00, 0x00, 0x00});

	CHECK(aml::resource_template({}) == Bytes{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00});
	CHECK(aml::resource_template({io, irq}) == concat({{0x11, 0x10, 0x0a, 0x0d}, io, irq, {0x79, 0x00}}));
}

TEST_CASE("ACPI tables: the header holds length, checksum and the ids", "[acpi]")
{
	const acpi::TableIds ids{"OEMID", "TABLEID", 7, "CRID", 9};
	Bytes table = acpi::table("TEST", 3, ids, {0xde, 0xad});
	REQUIRE(table.size() == acpi::kHeaderSize + 2);
	CHECK(Bytes(table.begin(), table.begin() + 4) == Bytes{'T', 'E', 'S', 'T'});
	CHECK(table[4] == acpi::kHeaderSize + 2);  // length, little endian
	CHECK(table[5] == 0);
	CHECK(table[8] == 3);  // revision
	CHECK(sum(table, table.size()) == 0);
	CHECK(Bytes(table.begin() + 10, table.begin() + 16) == Bytes{'O', 'E', 'M', 'I', 'D', ' '});
	CHECK(Bytes(table.begin() + 16, table.begin() + 24) == Bytes{'T', 'A', 'B', 'L', 'E', 'I', 'D', ' '});
	CHECK(table[24] == 7);  // OEM revision
	CHECK(Bytes(table.begin() + 28, table.begin() + 32) == Bytes{'C', 'R', 'I', 'D'});
	CHECK(table[32] == 9);  // creator revision
	CHECK(Bytes(table.end() - 2, table.end()) == Bytes{0xde, 0xad});
}

TEST_CASE("ACPI tables: the RSDP's two checksums and the XSDT's entries", "[acpi]")
{
	Bytes rsdp = acpi::rsdp("OEMID", 0x1122334455667788);
	REQUIRE(rsdp.size() == acpi::kRsdpSize);
	CHECK(sum(rsdp, 20) == 0);
	CHECK(sum(rsdp, 36) == 0);
	CHECK(rsdp[15] == 2);
	CHECK(Bytes(rsdp.begin() + 24, rsdp.begin() + 32) == Bytes{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11});

	Bytes xsdt = acpi::xsdt({"O", "T", 1, "C", 1}, {0x1000, 0x2000});
	REQUIRE(xsdt.size() == acpi::kHeaderSize + 16);
	CHECK(sum(xsdt, xsdt.size()) == 0);
	CHECK(xsdt[acpi::kHeaderSize + 1] == 0x10);
	CHECK(xsdt[acpi::kHeaderSize + 9] == 0x20);
}

TEST_CASE("ACPI tables: MADT structures and the FADT's size", "[acpi]")
{
	CHECK(acpi::madt_local_apic(2, 3, 1) == Bytes{0, 8, 2, 3, 1, 0, 0, 0});
	CHECK(acpi::madt_io_apic(4, 0xfec00000, 0) == Bytes{1, 12, 4, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0});
	CHECK(acpi::madt_local_apic_nmi(0xff, 0, 1) == Bytes{4, 6, 0xff, 0, 0, 1});

	Bytes madt = acpi::madt({"O", "T", 1, "C", 1}, 0xfee00000, 1, {acpi::madt_local_apic(0, 0, 1)});
	CHECK(madt.size() == acpi::kHeaderSize + 8 + 8);
	CHECK(sum(madt, madt.size()) == 0);

	acpi::Fadt fields;
	fields.reset_register = acpi::GenericAddress::system_io_byte(0x3c2);
	fields.hypervisor_vendor = "TEST";
	Bytes fadt = acpi::fadt({"O", "T", 1, "C", 1}, fields);
	CHECK(fadt.size() == acpi::kFadtSize);
	CHECK(sum(fadt, fadt.size()) == 0);
	// RESET_REG at offset 116: system I/O, 8 bits, byte access, port 0x3c2.
	CHECK(Bytes(fadt.begin() + 116, fadt.begin() + 128) == Bytes{1, 8, 0, 1, 0xc2, 0x03, 0, 0, 0, 0, 0, 0});
	CHECK(Bytes(fadt.begin() + 268, fadt.end()) == Bytes{'T', 'E', 'S', 'T', ' ', ' ', ' ', ' '});
}
