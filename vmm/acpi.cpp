#include "vmm/acpi.h"

#include <algorithm>
#include <string_view>

#include "base/error.h"
#include "devices/acpi_pm.h"
#include "devices/rtc.h"
#include "vmm/acpi/aml.h"
#include "vmm/acpi/tables.h"
#include "vmm/layout.h"
#include "vmm/table_writer.h"

// Section numbers are those of the ACPI 6.4 specification.

namespace kairos::vmm {
namespace {

using Bytes = std::vector<uint8_t>;

// The FADT must describe the registers devices::AcpiPm implements.
static_assert(layout::kPortAcpiSleepStatus - layout::kPortAcpiSleepControl == devices::AcpiPm::kSleepStatusOffset);
static_assert(layout::kPortAcpiReset - layout::kPortAcpiSleepControl == devices::AcpiPm::kResetOffset);

// Who made the tables (5.2.6 header fields).
constexpr acpi::TableIds kTableIds{"KAIROS", "KAIROSVM", 1, "KRVM", 1};
// FADT "Hypervisor Vendor Identity" (5.2.9), 8 bytes.
constexpr std::string_view kHypervisorVendor = "KAIROS";

constexpr size_t kTableAlignment = 16;  // the RSDP needs 16 (5.2.5.1); the rest 8

// The FADT minor version of ACPI 6.4, with the revision 6 layout.
constexpr uint8_t kFadtMinorVersion = 4;

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

// MADT (5.2.12).
constexpr uint32_t kMadtPcatCompat = 1u << 0;  // KVM's irqchip has the dual 8259
constexpr uint32_t kLocalApicEnabled = 1u << 0;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint16_t kInterruptFlagsConforming = 0;
constexpr uint8_t kNmiLint = 1;  // as the MP table says (virtual wire: NMI on LINT1)

constexpr size_t kEisaIdLength = 7;
constexpr size_t kAcpiIdLength = 8;

// ISA IRQ of the PS/2 keyboard (no layout constant: Kairos never raises it,
// but Linux's i8042 driver insists on one).
constexpr uint8_t kIrqKeyboard = 1;

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
		return make_error("ACPI tables for {} vCPUs: the MADT holds 1 to {} xAPIC ids", options.vcpu_count,
				  kAcpiMaxVcpus);
	for (const auto &device : options.isa_devices) {
		if (!aml::valid_name_segment(device.name))
			return make_error("ACPI device name \"{}\": need 1-4 of A-Z, 0-9, _, not starting with a digit",
					  device.name);
		if (!valid_hardware_id(device.hid))
			return make_error("ACPI device {}: _HID \"{}\" is neither an EISA id like PNP0501 "
					  "nor an ACPI id like KAIR0001",
					  device.name, device.hid);
		if (device.irq && *device.irq >= aml::kIrqDescriptorIrqs)
			return make_error("ACPI device {}: IRQ {} is not an ISA IRQ (0-15)", device.name, *device.irq);
		for (const auto &range : device.io)
			if (range.length == 0)
				return make_error("ACPI device {}: empty I/O range at {:#x}", device.name, range.base);
	}
	for (const auto &device : options.mmio_devices) {
		if (!aml::valid_name_segment(device.name) || !valid_hardware_id(device.hid))
			return make_error("ACPI device \"{}\" (_HID \"{}\"): bad name or id", device.name, device.hid);
		if (device.length == 0 || uint64_t{device.base} + device.length > 0x100000000)
			return make_error("ACPI device {}: memory range {:#x}+{:#x} is empty or beyond 4 GiB",
					  device.name, device.base, device.length);
		if (device.gsi >= layout::kIoapicPins)
			return make_error("ACPI device {}: GSI {} is beyond the IOAPIC's {} pins", device.name,
					  device.gsi, layout::kIoapicPins);
	}
	return {};
}

Bytes hardware_id(const std::string &hid)
{
	return hid.size() == kEisaIdLength ? aml::eisa_id(hid) : aml::string(hid);
}

// Device (name) { _HID, _UID, _CRS } (vmm/acpi.h, AcpiMmioDevice).
Bytes mmio_device(const AcpiMmioDevice &device)
{
	std::vector<Bytes> resources = {aml::memory32_fixed(device.base, device.length),
					aml::extended_interrupt_edge(device.gsi)};
	return aml::device(aml::name_segment(device.name),
			   {aml::name(aml::name_segment("_HID"), hardware_id(device.hid)),
			    aml::name(aml::name_segment("_UID"), aml::integer(device.uid)),
			    aml::name(aml::name_segment("_CRS"), aml::resource_template(resources))});
}

// Device (name) { _HID, _UID, _CRS }: _CRS lists the ports, each fixed
// (minimum = maximum, alignment 1), and the IRQ if there is one.
Bytes isa_device(const AcpiIsaDevice &device)
{
	std::vector<Bytes> resources;
	for (const auto &range : device.io)
		resources.push_back(aml::io_port(range.base, range.base, 1, range.length));
	if (device.irq)
		resources.push_back(aml::irq_no_flags(*device.irq));
	return aml::device(aml::name_segment(device.name),
			   {aml::name(aml::name_segment("_HID"), hardware_id(device.hid)),
			    aml::name(aml::name_segment("_UID"), aml::integer(device.uid)),
			    aml::name(aml::name_segment("_CRS"), aml::resource_template(resources))});
}

// The power button and the GED that notifies it (AcpiOptions::power_button_irq).
std::vector<Bytes> power_button_devices(uint8_t irq)
{
	// 0x80: "the power button was pressed" (5.6.6, table "Device Object
	// Notification Values" for PNP0C0C).
	constexpr uint64_t kNotifyButtonPressed = 0x80;
	Bytes button =
		aml::device(aml::name_segment("PWRB"), {aml::name(aml::name_segment("_HID"), aml::eisa_id("PNP0C0C")),
							aml::name(aml::name_segment("_UID"), aml::integer(0))});
	// _EVT's one argument is the interrupt that fired; there is only one.
	Bytes ged = aml::device(
		aml::name_segment("GED0"),
		{aml::name(aml::name_segment("_HID"), aml::string("ACPI0013")),
		 aml::name(aml::name_segment("_UID"), aml::integer(0)),
		 aml::name(aml::name_segment("_CRS"), aml::resource_template({aml::irq_no_flags(irq)})),
		 aml::method(aml::name_segment("_EVT"), 1,
			     {aml::notify(aml::name_segment("PWRB"), aml::integer(kNotifyButtonPressed))})});
	return {button, ged};
}

// DSDT (5.2.11.1): \_S5 for power-off (7.4.2 "\_Sx (System States)"), and
// the ISA devices, the power button and the memory-mapped devices under \_SB.
Bytes build_dsdt(const AcpiOptions &options)
{
	// SLP_TYPa, SLP_TYPb, reserved, reserved. Hardware-reduced ACPI writes
	// SLP_TYPa to the sleep control register (4.8.3.7).
	std::vector<Bytes> terms = {
		aml::name(aml::root_name("_S5"),
			  aml::package({aml::integer(options.soft_off_sleep_type),
					aml::integer(options.soft_off_sleep_type), aml::integer(0), aml::integer(0)}))};
	std::vector<Bytes> devices;
	for (const auto &device : options.isa_devices)
		devices.push_back(isa_device(device));
	if (options.power_button_irq)
		for (auto &device : power_button_devices(*options.power_button_irq))
			devices.push_back(std::move(device));
	for (const auto &device : options.mmio_devices)
		devices.push_back(mmio_device(device));
	if (!devices.empty())
		terms.push_back(aml::scope(aml::root_name("_SB"), devices));
	return acpi::dsdt(kTableIds, terms);
}

// MADT (5.2.12): one enabled Local APIC per vCPU, the IOAPIC, and LINT1 as
// NMI. No interrupt source overrides: ISA IRQ n is GSI n, as KVM's default
// routing and the MP table have it.
Bytes build_madt(const AcpiOptions &options)
{
	std::vector<Bytes> controllers;
	for (uint32_t cpu = 0; cpu < options.vcpu_count; ++cpu) {
		// Processor UID and APIC id both cpu, as CPUID and the MP table say.
		auto id = static_cast<uint8_t>(cpu);
		controllers.push_back(acpi::madt_local_apic(id, id, kLocalApicEnabled));
	}
	controllers.push_back(acpi::madt_io_apic(options.ioapic_id, options.ioapic_address, options.ioapic_gsi_base));
	controllers.push_back(acpi::madt_local_apic_nmi(kAllProcessors, kInterruptFlagsConforming, kNmiLint));
	return acpi::madt(kTableIds, options.lapic_address, kMadtPcatCompat, controllers);
}

// FADT (5.2.9): hardware-reduced, with only the sleep and reset registers
// devices::AcpiPm implements.
Bytes build_fadt(uint64_t dsdt_address, const AcpiOptions &options)
{
	acpi::Fadt fadt;
	fadt.preferred_pm_profile = kPmProfileUnspecified;
	fadt.century = options.rtc_century_index;
	fadt.boot_architecture_flags = kBootArchLegacyDevices | kBootArch8042 | kBootArchVgaNotPresent;
	fadt.flags = kFadtHardwareReduced | kFadtResetRegisterSupported | kFadtPowerButtonIsDevice |
		     kFadtSleepButtonIsDevice;
	fadt.reset_register = acpi::GenericAddress::system_io_byte(options.reset_port);
	fadt.reset_value = options.reset_value;
	fadt.minor_version = kFadtMinorVersion;
	fadt.dsdt_address = dsdt_address;
	fadt.sleep_control_register = acpi::GenericAddress::system_io_byte(options.sleep_control_port);
	fadt.sleep_status_register = acpi::GenericAddress::system_io_byte(options.sleep_status_port);
	fadt.hypervisor_vendor = kHypervisorVendor;
	return acpi::fadt(kTableIds, fadt);
}

size_t align_up(size_t value)
{
	return (value + kTableAlignment - 1) / kTableAlignment * kTableAlignment;
}

}  // namespace

AcpiOptions acpi_options_for_machine(uint32_t vcpu_count, uint32_t virtio_mmio_devices)
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
	options.rtc_century_index = devices::Rtc::kCenturyIndex;
	options.isa_devices = {
		{"COM1",
		 "PNP0501",
		 1,
		 {{layout::kPortCom1, static_cast<uint8_t>(layout::kComPortSize)}},
		 static_cast<uint8_t>(layout::kIrqCom1)},
		// The i8042's ports are 0x60 and 0x64, in that order (Linux's
		// i8042_pnp_kbd_probe takes data then command).
		{"PS2K", "PNP0303", 0, {{layout::kPortI8042Data, 1}, {layout::kPortI8042Command, 1}}, kIrqKeyboard},
		// IRQ 8 for its update, alarm and periodic interrupts. It must be
		// here: with hardware-reduced ACPI Linux has no legacy PIC, and
		// rtc-cmos then guesses no IRQ for an RTC whose _CRS lists none.
		{"RTC",
		 "PNP0B00",
		 0,
		 {{layout::kPortRtc, static_cast<uint8_t>(layout::kRtcPortSize)}},
		 static_cast<uint8_t>(layout::kIrqRtc)},
	};
	options.power_button_irq = static_cast<uint8_t>(layout::kIrqPowerButton);
	for (uint32_t slot = 0; slot < virtio_mmio_devices; ++slot)
		options.mmio_devices.push_back(
			{fmt::format("VR{:02}", slot), kVirtioMmioHid, slot,
			 static_cast<uint32_t>(layout::kVirtioMmioBase + slot * layout::kVirtioMmioSlotSize),
			 static_cast<uint32_t>(layout::kVirtioMmioSlotSize), layout::kVirtioMmioFirstGsi + slot});
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
	const size_t xsdt_offset = align_up(acpi::kRsdpSize);
	const size_t dsdt_offset = align_up(xsdt_offset + acpi::kHeaderSize + 8 * kXsdtEntries);
	const size_t madt_offset = align_up(dsdt_offset + dsdt.size());
	const size_t fadt_offset = align_up(madt_offset + madt.size());

	Bytes fadt = build_fadt(base_address + dsdt_offset, options);
	Bytes xsdt = acpi::xsdt(kTableIds, {base_address + fadt_offset, base_address + madt_offset});
	Bytes rsdp = acpi::rsdp(kTableIds.oem_id, base_address + xsdt_offset);

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

}  // namespace kairos::vmm
