#include "vmm/acpi.h"

#include "vmm/table_writer.h"

#include <algorithm>
#include <numeric>
#include <string_view>

#include "devices/acpi_pm.h"
#include "base/error.h"
#include "vmm/layout.h"

// Section numbers are those of the ACPI 6.4 specification.

namespace kairos::vmm {
namespace {

using Bytes = std::vector<uint8_t>;

// The FADT must describe the registers devices::AcpiPm implements.
static_assert(layout::kPortAcpiSleepStatus - layout::kPortAcpiSleepControl ==
	      devices::AcpiPm::kSleepStatusOffset);
static_assert(layout::kPortAcpiReset - layout::kPortAcpiSleepControl == devices::AcpiPm::kResetOffset);

constexpr std::string_view kOemId = "KAIROS";         // 6 characters
constexpr std::string_view kOemTableId = "KAIROSVM";  // 8 characters
constexpr uint32_t kOemRevision = 1;
constexpr std::string_view kCreatorId = "KRVM";       // 4 characters
constexpr uint32_t kCreatorRevision = 1;
// FADT "Hypervisor Vendor Identity" (5.2.9), 8 bytes.
constexpr std::string_view kHypervisorVendor = "KAIROS";

constexpr size_t kTableAlignment = 16;  // the RSDP needs 16 (5.2.5.1); the rest 8
constexpr size_t kHeaderSize = 36;      // 5.2.6
constexpr size_t kLengthOffset = 4;
constexpr size_t kChecksumOffset = 9;

// RSDP (5.2.5.3): revision 2 means ACPI 2.0+, with an XSDT and a 36-byte
// structure under the extended checksum.
constexpr uint8_t kRsdpRevision = 2;
constexpr size_t kRsdpSize = 36;
constexpr size_t kRsdpChecksumSize = 20;  // the ACPI 1.0 part
constexpr size_t kRsdpChecksumOffset = 8;
constexpr size_t kRsdpExtendedChecksumOffset = 32;

constexpr uint8_t kXsdtRevision = 1;
// FADT revision 6 (ACPI 6.0 and later) is the one with the hypervisor vendor
// identity, 276 bytes: exactly Linux 6.1's struct acpi_table_fadt, so ACPICA
// neither truncates nor zero-extends it.
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorVersion = 4;
// DSDT revision 2: AML integers are 64-bit (5.2.11.1).
constexpr uint8_t kDsdtRevision = 2;
constexpr uint8_t kMadtRevision = 5;

// FADT fixed feature flags (5.2.9, table "Fixed ACPI Description Table
// Fixed Feature Flags").
constexpr uint32_t kFadtPowerButtonIsDevice = 1u << 4;  // PWR_BUTTON: no fixed power button
constexpr uint32_t kFadtSleepButtonIsDevice = 1u << 5;  // SLP_BUTTON: no fixed sleep button
constexpr uint32_t kFadtResetRegisterSupported = 1u << 10;
constexpr uint32_t kFadtHardwareReduced = 1u << 20;
// IA-PC boot architecture flags (5.2.9.3). Linux's acpi_parse_fadt()
// disables the i8042 unless the 8042 flag is set and the CMOS RTC if "CMOS
// RTC not present" is; Kairos has both. It has no VGA, whose registers at
// 0x3c0-0x3cf would overlap the sleep registers: nothing may probe there.
constexpr uint16_t kBootArchLegacyDevices = 1u << 0;
constexpr uint16_t kBootArch8042 = 1u << 1;
constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;
constexpr uint8_t kPmProfileUnspecified = 0;

// Generic Address Structure (5.2.3.2).
constexpr uint8_t kAddressSpaceSystemIo = 1;
constexpr uint8_t kAccessSizeByte = 1;

// MADT (5.2.12).
constexpr uint32_t kMadtPcatCompat = 1u << 0;  // KVM's irqchip has the dual 8259
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtIoapic = 1;
constexpr uint8_t kMadtLocalApicNmi = 4;
constexpr uint32_t kLocalApicEnabled = 1u << 0;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint16_t kInterruptFlagsConforming = 0;
constexpr uint8_t kNmiLint = 1;  // as the MP table says (virtual wire: NMI on LINT1)

// AML opcodes (20.2).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';

// Small resource descriptors (6.4.2).
constexpr uint8_t kIrqDescriptor = 0x22;        // IRQ, 2 bytes: no flags, so edge, active high
constexpr uint8_t kIoDescriptor = 0x47;         // I/O port, 7 bytes
constexpr uint8_t kIoDecode16 = 0x01;
constexpr uint8_t kEndTagDescriptor = 0x79;     // end tag, 1 byte: the checksum
constexpr uint8_t kIsaIrqs = 16;
constexpr size_t kEisaIdLength = 7;
constexpr size_t kAcpiIdLength = 8;

// ISA IRQ of the PS/2 keyboard (no layout constant: Kairos never raises it,
// but Linux's i8042 driver insists on one).
constexpr uint8_t kIrqKeyboard = 1;
// The century register of devices::Rtc, as on every PC.
constexpr uint8_t kRtcCenturyIndex = 0x32;

// System description table header (5.2.6); length and checksum are set by
// finish_table once the body is written.
TableWriter begin_table(std::string_view signature, uint8_t revision)
{
	TableWriter w;
	w.text(signature, 4);
	w.u32(0);  // length
	w.u8(revision);
	w.u8(0);  // checksum
	w.text(kOemId, 6);
	w.text(kOemTableId, 8);
	w.u32(kOemRevision);
	w.text(kCreatorId, 4);
	w.u32(kCreatorRevision);
	return w;
}

Bytes finish_table(TableWriter &&w)
{
	Bytes table = std::move(w.bytes);
	put_u32(table, kLengthOffset, static_cast<uint32_t>(table.size()));
	fix_checksum(table, 0, table.size(), kChecksumOffset);
	return table;
}

// An 8-bit register in system I/O space, as a Generic Address Structure.
void io_register(TableWriter &w, uint16_t port)
{
	w.u8(kAddressSpaceSystemIo);
	w.u8(8);  // register bit width
	w.u8(0);  // register bit offset
	w.u8(kAccessSizeByte);
	w.u64(port);
}

// --- AML (chapter 20) ----------------------------------------------------------

// PkgLength (20.2.4): the length of what follows plus of the encoding
// itself; one byte up to 63, else a lead byte holding the low nibble and
// the count of following bytes, which hold the rest 8 bits at a time.
Bytes package_length(size_t content_size)
{
	if (content_size + 1 <= 0x3f)
		return {static_cast<uint8_t>(content_size + 1)};
	for (size_t extra = 1; extra <= 3; ++extra) {
		size_t total = content_size + 1 + extra;
		if (total >> (4 + 8 * extra))
			continue;
		Bytes encoded{static_cast<uint8_t>((extra << 6) | (total & 0xf))};
		for (size_t i = 0; i < extra; ++i)
			encoded.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
		return encoded;
	}
	return {};  // beyond 256 MiB: unreachable for these tables
}

// Prefixes body with opcode bytes and its PkgLength.
Bytes with_package_length(Bytes opcode, const Bytes &body)
{
	Bytes length = package_length(body.size());
	opcode.insert(opcode.end(), length.begin(), length.end());
	opcode.insert(opcode.end(), body.begin(), body.end());
	return opcode;
}

// A NameSeg (20.2.2): four characters, short names padded with '_'.
Bytes name_segment(std::string_view name)
{
	Bytes segment(name.begin(), name.end());
	segment.resize(4, '_');
	return segment;
}

Bytes root_name(std::string_view name)
{
	Bytes path{kRootChar};
	Bytes segment = name_segment(name);
	path.insert(path.end(), segment.begin(), segment.end());
	return path;
}

// The shortest integer encoding (20.2.3 ComputationalData).
Bytes integer(uint64_t value)
{
	if (value == 0)
		return {kZeroOp};
	if (value == 1)
		return {kOneOp};
	TableWriter w;
	if (value <= 0xff) {
		w.u8(kBytePrefix);
		w.u8(static_cast<uint8_t>(value));
	} else if (value <= 0xffff) {
		w.u8(kWordPrefix);
		w.u16(static_cast<uint16_t>(value));
	} else if (value <= 0xffffffff) {
		w.u8(kDWordPrefix);
		w.u32(static_cast<uint32_t>(value));
	} else {
		w.u8(kQWordPrefix);
		w.u64(value);
	}
	return w.bytes;
}

// An EISA id such as "PNP0501", compressed into a DWordConst as ASL's
// EisaId() does (6.1.5 _HID): three 5-bit letters, then four hex digits,
// both halves stored most significant byte first.
Bytes eisa_id(std::string_view id)
{
	auto letter = [](char c) { return static_cast<uint32_t>(c - 'A' + 1) & 0x1f; };
	auto hex = [](char c) {
		return static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10);
	};
	uint32_t vendor = (letter(id[0]) << 10) | (letter(id[1]) << 5) | letter(id[2]);
	uint32_t product = (hex(id[3]) << 12) | (hex(id[4]) << 8) | (hex(id[5]) << 4) | hex(id[6]);
	TableWriter w;
	w.u8(kDWordPrefix);
	w.u8(static_cast<uint8_t>(vendor >> 8));
	w.u8(static_cast<uint8_t>(vendor));
	w.u8(static_cast<uint8_t>(product >> 8));
	w.u8(static_cast<uint8_t>(product));
	return w.bytes;
}

// An ACPI id such as "KAIR0001" as a String (20.2.3): _HID may be either.
Bytes aml_string(std::string_view text)
{
	Bytes out{kStringPrefix};
	out.insert(out.end(), text.begin(), text.end());
	out.push_back(0);  // NullChar
	return out;
}

// Name (name, object) (20.2.5.1 DefName).
Bytes aml_name(const Bytes &name, const Bytes &object)
{
	Bytes out{kNameOp};
	out.insert(out.end(), name.begin(), name.end());
	out.insert(out.end(), object.begin(), object.end());
	return out;
}

// Package () { elements } (20.2.5.4 DefPackage).
Bytes aml_package(const std::vector<Bytes> &elements)
{
	Bytes body{static_cast<uint8_t>(elements.size())};
	for (const auto &element : elements)
		body.insert(body.end(), element.begin(), element.end());
	return with_package_length({kPackageOp}, body);
}

// Buffer () { data } (20.2.5.4 DefBuffer).
Bytes aml_buffer(const Bytes &data)
{
	Bytes body = integer(data.size());
	body.insert(body.end(), data.begin(), data.end());
	return with_package_length({kBufferOp}, body);
}

// ResourceTemplate () { IO (Decode16, ...) ... IRQNoFlags () {n} } (6.4.2).
Bytes resource_template(const AcpiIsaDevice &device)
{
	TableWriter w;
	for (const auto &range : device.io) {
		w.u8(kIoDescriptor);
		w.u8(kIoDecode16);
		w.u16(range.base);  // range minimum
		w.u16(range.base);  // range maximum: the device does not move
		w.u8(1);            // alignment
		w.u8(range.length);
	}
	if (device.irq) {
		w.u8(kIrqDescriptor);
		w.u16(static_cast<uint16_t>(1u << *device.irq));
	}
	w.u8(kEndTagDescriptor);
	w.u8(0);  // checksum 0: "treated as if the checksum operation succeeded"
	return aml_buffer(w.bytes);
}

// Device (name) { _HID, _UID, _CRS } (20.2.5.2 DefDevice).
Bytes aml_device(const AcpiIsaDevice &device)
{
	Bytes hid = device.hid.size() == kEisaIdLength ? eisa_id(device.hid) : aml_string(device.hid);
	Bytes body = aml_name(name_segment("_HID"), hid);
	Bytes uid = aml_name(name_segment("_UID"), integer(device.uid));
	Bytes crs = aml_name(name_segment("_CRS"), resource_template(device));
	Bytes name = name_segment(device.name);
	body.insert(body.begin(), name.begin(), name.end());
	body.insert(body.end(), uid.begin(), uid.end());
	body.insert(body.end(), crs.begin(), crs.end());
	return with_package_length({kExtOpPrefix, kDeviceOp}, body);
}

// --- Tables --------------------------------------------------------------------

bool valid_name_segment(std::string_view name)
{
	if (name.empty() || name.size() > 4)
		return false;
	for (size_t i = 0; i < name.size(); ++i) {
		char c = name[i];
		bool letter = (c >= 'A' && c <= 'Z') || c == '_';
		bool digit = c >= '0' && c <= '9';
		if (!letter && !(digit && i > 0))
			return false;
	}
	return true;
}

// A _HID (6.1.5): EISA "PNP0501" (three letters, four hex digits) or ACPI
// "KAIR0001" (four letters or digits, four hex digits).
bool valid_hardware_id(std::string_view id)
{
	size_t prefix;
	if (id.size() == kEisaIdLength)
		prefix = 3;
	else if (id.size() == kAcpiIdLength)
		prefix = 4;
	else
		return false;
	auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
	auto digit = [](char c) { return c >= '0' && c <= '9'; };
	for (size_t i = 0; i < prefix; ++i)
		if (!upper(id[i]) && !(prefix == 4 && digit(id[i])))
			return false;
	for (size_t i = prefix; i < id.size(); ++i)
		if (!digit(id[i]) && !(id[i] >= 'A' && id[i] <= 'F'))
			return false;
	return true;
}

Status validate(const AcpiOptions &options)
{
	if (options.vcpu_count == 0 || options.vcpu_count > kAcpiMaxVcpus)
		return make_error("ACPI tables for {} vCPUs: the MADT holds 1 to {} xAPIC ids",
				  options.vcpu_count, kAcpiMaxVcpus);
	for (const auto &device : options.isa_devices) {
		if (!valid_name_segment(device.name))
			return make_error("ACPI device name \"{}\": need 1-4 of A-Z, 0-9, _, not starting with a digit",
					  device.name);
		if (!valid_hardware_id(device.hid))
			return make_error("ACPI device {}: _HID \"{}\" is neither an EISA id like PNP0501 "
					  "nor an ACPI id like KAIR0001",
					  device.name, device.hid);
		if (device.irq && *device.irq >= kIsaIrqs)
			return make_error("ACPI device {}: IRQ {} is not an ISA IRQ (0-15)", device.name,
					  *device.irq);
		for (const auto &range : device.io)
			if (range.length == 0)
				return make_error("ACPI device {}: empty I/O range at {:#x}", device.name,
						  range.base);
	}
	return {};
}

// DSDT (5.2.11.1): \_S5 for power-off (7.4.2 "\_Sx (System States)"), and
// the ISA devices under \_SB.
Bytes build_dsdt(const AcpiOptions &options)
{
	TableWriter w = begin_table("DSDT", kDsdtRevision);
	// SLP_TYPa, SLP_TYPb, reserved, reserved. Hardware-reduced ACPI writes
	// SLP_TYPa to the sleep control register (4.8.3.7).
	w.append(aml_name(root_name("_S5"), aml_package({integer(options.soft_off_sleep_type),
							  integer(options.soft_off_sleep_type),
							  integer(0), integer(0)})));
	if (!options.isa_devices.empty()) {
		Bytes devices = root_name("_SB");
		for (const auto &device : options.isa_devices) {
			Bytes encoded = aml_device(device);
			devices.insert(devices.end(), encoded.begin(), encoded.end());
		}
		w.append(with_package_length({kScopeOp}, devices));
	}
	return finish_table(std::move(w));
}

// MADT (5.2.12): one enabled Local APIC per vCPU, the IOAPIC, and LINT1 as
// NMI. No interrupt source overrides: ISA IRQ n is GSI n, as KVM's default
// routing and the MP table have it.
Bytes build_madt(const AcpiOptions &options)
{
	TableWriter w = begin_table("APIC", kMadtRevision);
	w.u32(options.lapic_address);
	w.u32(kMadtPcatCompat);
	for (uint32_t cpu = 0; cpu < options.vcpu_count; ++cpu) {
		w.u8(kMadtLocalApic);
		w.u8(8);  // length
		w.u8(static_cast<uint8_t>(cpu));  // ACPI processor UID
		w.u8(static_cast<uint8_t>(cpu));  // APIC id, as CPUID and the MP table say
		w.u32(kLocalApicEnabled);
	}
	w.u8(kMadtIoapic);
	w.u8(12);  // length
	w.u8(options.ioapic_id);
	w.u8(0);  // reserved
	w.u32(options.ioapic_address);
	w.u32(options.ioapic_gsi_base);

	w.u8(kMadtLocalApicNmi);
	w.u8(6);  // length
	w.u8(kAllProcessors);
	w.u16(kInterruptFlagsConforming);
	w.u8(kNmiLint);
	return finish_table(std::move(w));
}

// FADT (5.2.9). With HW_REDUCED_ACPI set, the PM1/PM2/GPE/PM timer blocks,
// SCI and SMI fields are ignored (5.2.9 "Fixed ACPI Description Table");
// they stay zero.
Bytes build_fadt(uint64_t dsdt_address, const AcpiOptions &options)
{
	TableWriter w = begin_table("FACP", kFadtRevision);
	w.u32(0);  // FIRMWARE_CTRL: no FACS in hardware-reduced ACPI
	w.u32(0);  // DSDT: 0 since X_DSDT holds it
	w.u8(0);   // reserved
	w.u8(kPmProfileUnspecified);
	w.u16(0);    // SCI_INT
	w.u32(0);    // SMI_CMD: no SMM, so the machine is always in ACPI mode
	w.zeros(4);  // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
	w.zeros(8 * 4);  // PM1a_EVT_BLK ... GPE1_BLK
	w.zeros(8);  // PM1_EVT_LEN ... CST_CNT
	w.zeros(8);  // P_LVL2_LAT, P_LVL3_LAT, FLUSH_SIZE, FLUSH_STRIDE
	w.zeros(4);  // DUTY_OFFSET, DUTY_WIDTH, DAY_ALRM, MON_ALRM: no RTC alarm
	w.u8(options.rtc_century_index);
	w.u16(kBootArchLegacyDevices | kBootArch8042 | kBootArchVgaNotPresent);
	w.u8(0);  // reserved
	w.u32(kFadtHardwareReduced | kFadtResetRegisterSupported | kFadtPowerButtonIsDevice |
	      kFadtSleepButtonIsDevice);
	io_register(w, options.reset_port);  // RESET_REG (4.8.3.6)
	w.u8(options.reset_value);
	w.u16(0);  // ARM_BOOT_ARCH
	w.u8(kFadtMinorVersion);
	w.u64(0);  // X_FIRMWARE_CTRL
	w.u64(dsdt_address);  // X_DSDT
	w.zeros(8 * 12);  // X_PM1a_EVT_BLK ... X_GPE1_BLK
	io_register(w, options.sleep_control_port);  // SLEEP_CONTROL_REG (4.8.3.7)
	io_register(w, options.sleep_status_port);   // SLEEP_STATUS_REG
	w.text(kHypervisorVendor, 8);
	return finish_table(std::move(w));
}

Bytes build_xsdt(const std::vector<uint64_t> &tables)
{
	TableWriter w = begin_table("XSDT", kXsdtRevision);
	for (uint64_t address : tables)
		w.u64(address);
	return finish_table(std::move(w));
}

// RSDP (5.2.5.3). No RSDT: an ACPI 2.0+ OS uses the XSDT.
Bytes build_rsdp(uint64_t xsdt_address)
{
	TableWriter w;
	w.text("RSD PTR ", 8);
	w.u8(0);  // checksum of the first 20 bytes
	w.text(kOemId, 6);
	w.u8(kRsdpRevision);
	w.u32(0);  // RsdtAddress
	w.u32(static_cast<uint32_t>(kRsdpSize));
	w.u64(xsdt_address);
	w.u8(0);  // extended checksum, of all 36 bytes
	w.zeros(3);
	Bytes rsdp = std::move(w.bytes);
	fix_checksum(rsdp, 0, kRsdpChecksumSize, kRsdpChecksumOffset);
	fix_checksum(rsdp, 0, kRsdpSize, kRsdpExtendedChecksumOffset);
	return rsdp;
}

size_t align_up(size_t value)
{
	return (value + kTableAlignment - 1) / kTableAlignment * kTableAlignment;
}

} // namespace

AcpiOptions acpi_options_for_machine(uint32_t vcpu_count)
{
	AcpiOptions options;
	options.vcpu_count = vcpu_count;
	options.ioapic_id = static_cast<uint8_t>(vcpu_count);
	options.ioapic_address = static_cast<uint32_t>(layout::kIoapicAddr);
	options.ioapic_gsi_base = 0;
	options.lapic_address = static_cast<uint32_t>(layout::kLapicAddr);
	options.sleep_control_port = layout::kPortAcpiSleepControl;
	options.sleep_status_port = layout::kPortAcpiSleepStatus;
	options.reset_port = layout::kPortAcpiReset;
	options.reset_value = devices::AcpiPm::kResetValue;
	options.soft_off_sleep_type = devices::AcpiPm::kSleepTypeSoftOff;
	options.rtc_century_index = kRtcCenturyIndex;
	options.isa_devices = {
		{"COM1", "PNP0501", 1, {{layout::kPortCom1, static_cast<uint8_t>(layout::kComPortSize)}},
		 static_cast<uint8_t>(layout::kIrqCom1)},
		// The i8042's ports are 0x60 and 0x64, in that order (Linux's
		// i8042_pnp_kbd_probe takes data then command).
		{"PS2K", "PNP0303", 0, {{layout::kPortI8042Data, 1}, {layout::kPortI8042Command, 1}}, kIrqKeyboard},
		// No IRQ: devices::Rtc raises none, and rtc-cmos without one
		// reports no alarm instead of one that never fires.
		{"RTC", "PNP0B00", 0, {{layout::kPortRtc, static_cast<uint8_t>(layout::kRtcPortSize)}}, std::nullopt},
	};
	return options;
}

Result<std::vector<uint8_t>> build_acpi_tables(uint64_t base_address, const AcpiOptions &options)
{
	KAIROS_TRY(validate(options));

	// RSDP, XSDT, DSDT, MADT, FADT: the tables that point at others
	// (RSDP, XSDT, FADT) are built once the layout is fixed.
	Bytes dsdt = build_dsdt(options);
	Bytes madt = build_madt(options);
	constexpr size_t kXsdtEntries = 2;
	const size_t xsdt_offset = align_up(kRsdpSize);
	const size_t dsdt_offset = align_up(xsdt_offset + kHeaderSize + 8 * kXsdtEntries);
	const size_t madt_offset = align_up(dsdt_offset + dsdt.size());
	const size_t fadt_offset = align_up(madt_offset + madt.size());

	Bytes fadt = build_fadt(base_address + dsdt_offset, options);
	Bytes xsdt = build_xsdt({base_address + fadt_offset, base_address + madt_offset});
	Bytes rsdp = build_rsdp(base_address + xsdt_offset);

	Bytes blob(fadt_offset + fadt.size(), 0);
	auto place = [&blob](const Bytes &table, size_t offset) {
		std::copy(table.begin(), table.end(), blob.begin() + static_cast<long>(offset));
	};
	place(rsdp, 0);
	place(xsdt, xsdt_offset);
	place(fadt, fadt_offset);
	place(dsdt, dsdt_offset);
	place(madt, madt_offset);
	return blob;
}

std::vector<uint8_t> build_reset_vector(const AcpiOptions &options)
{
	// Real mode, CS:IP = F000:FFF0 (Intel SDM vol. 3A 9.1.4).
	TableWriter w;
	w.u8(0xb0);  // mov al, reset_value
	w.u8(options.reset_value);
	w.u8(0xba);  // mov dx, reset_port
	w.u16(options.reset_port);
	w.u8(0xee);  // out dx, al
	w.u8(0xfa);  // cli
	w.u8(0xf4);  // hlt: only reached if the VMM ignored the reset
	w.u8(0xeb);  // jmp short to the hlt
	w.u8(0xfd);
	// The rest of the 16 bytes up to 1 MiB: hlt.
	while (w.bytes.size() < 16)
		w.u8(0xf4);
	return w.bytes;
}

uint64_t acpi_rsdp_address(uint64_t base_address)
{
	return base_address;
}

} // namespace kairos::vmm
